-- As SQLite's 0010: a group's rows of one trail in the index alone, so counting a log file's
-- rows and reading its records need no look-up of each outbox row to test its trail.
DROP INDEX outbox_by_group;
CREATE INDEX outbox_by_group ON outbox (account, region, trail_arn, seq);
