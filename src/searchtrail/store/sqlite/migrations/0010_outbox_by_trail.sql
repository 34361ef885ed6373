-- A log file's rows found in the index alone. outbox_by_group was (account, region, seq): a
-- claim counting a group's rows and a file reading its records looked up every row in the
-- table to test its trail, a random read per record once an organization trail's records are
-- spread over many accounts and Regions (measured: 2 ms of a 1,000-record file's ~6 ms read,
-- and its count). With the trail in the key both read only the index; the API's outbox row
-- costs ~0.4 µs more (bench/README.md, "An organization trail's files").
DROP INDEX outbox_by_group;
CREATE INDEX outbox_by_group ON outbox (account, region, trail_arn, seq);
