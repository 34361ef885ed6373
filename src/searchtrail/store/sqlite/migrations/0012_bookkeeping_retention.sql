-- Retention of delivery bookkeeping: log-file and digest rows older than the event-history
-- window leave the store too (audit/retention.py). An organization trail adds a digest row per
-- account and Region every hour, for ever; the objects themselves stay in their bucket. Rows
-- stay fixed otherwise; a row can be deleted only when
--   * a log file's is delivered and notified a day or more ago (by the database's clock), and
--     a newer file of its trail, account and Region exists (the newest holds the group's
--     claimed-through mark, delivery.py's _GROUP_MARK);
--   * a digest's is delivered, ended a day or more ago, and a later digest of its chain exists
--     (the newest is the next digest's previous one).
-- Whether a digest lists the file yet is the application's check: it depends on the trail's
-- settings, which the store does not read. (SQLite does not enforce digests.previous_id's
-- reference: a chain's oldest kept digest names a removed one, as it was signed.)

DROP TRIGGER log_files_no_delete;
CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
WHEN OLD.delivered_at IS NULL OR OLD.notified_at IS NULL OR OLD.last_seq IS NULL
  OR OLD.delivered_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400
  OR NOT EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                 AND account = OLD.account AND region = OLD.region AND last_seq > OLD.last_seq)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER digests_no_delete;
CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
WHEN OLD.delivered_at IS NULL
  OR OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
  OR NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                 AND account = OLD.account AND region = OLD.region AND end_time > OLD.end_time)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
