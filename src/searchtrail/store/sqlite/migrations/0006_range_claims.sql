-- Range claims: a log file claims its records as a range of seqs, not by a mark on each row.
--
-- Until now a claim was one UPDATE per record (outbox.file_id), run while holding the write
-- turn that every API call's commit waits for: ~6 us of the worker's CPU per record, and the
-- longest unit the writer ran. Outbox rows are now never updated at all:
--   * a log file records the first and last seq of its records; its records are the rows of
--     its trail, account folder and region with a seq in that range (ranges never overlap:
--     seqs grow in commit order under the one writer, and a group is claimed oldest first);
--   * outbox_claims holds, per trail, the seq through which every row has been claimed;
--   * a claim pass is one writer unit of one INSERT per new log file, whatever its size.
--
-- Files claimed the old way get their ranges from the rows they claimed; each trail's mark is
-- set just below its oldest unclaimed row, and a group's rows up to its newest file's range
-- stay claimed, so nothing is claimed twice or skipped across the upgrade.

ALTER TABLE log_files ADD COLUMN first_seq INTEGER;
ALTER TABLE log_files ADD COLUMN last_seq INTEGER;
UPDATE log_files SET first_seq = (SELECT min(seq) FROM outbox WHERE file_id = log_files.id),
                     last_seq = (SELECT max(seq) FROM outbox WHERE file_id = log_files.id);
-- A group's claimed-through mark: the last seq of its newest file.
CREATE INDEX log_files_ranges ON log_files (trail_arn, account, region, last_seq);

CREATE TABLE outbox_claims (
    trail_arn   TEXT PRIMARY KEY,
    through_seq INTEGER NOT NULL   -- every row of the trail up to this seq is in a log file
) WITHOUT ROWID;
INSERT INTO outbox_claims (trail_arn, through_seq)
SELECT trail_arn, coalesce(min(CASE WHEN file_id IS NULL THEN seq END) - 1, max(seq))
FROM outbox GROUP BY trail_arn;

-- The outbox without its claim column: rows are now fixed once written.
DROP TRIGGER outbox_claimed_once;
DROP INDEX outbox_unassigned;
DROP INDEX outbox_by_file;
ALTER TABLE outbox DROP COLUMN file_id;
-- A group's rows in seq order: a claim counts them, a log file reads its range. It replaces
-- outbox_unassigned entry for entry on the API's side (one per row, same short key).
CREATE INDEX outbox_by_group ON outbox (account, region, seq);
CREATE TRIGGER outbox_fixed BEFORE UPDATE ON outbox
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

-- A log file's range is as fixed as its key and record count.
DROP TRIGGER log_files_fixed;
CREATE TRIGGER log_files_fixed BEFORE UPDATE ON log_files
WHEN NEW.id IS NOT OLD.id OR NEW.trail_arn IS NOT OLD.trail_arn OR NEW.account IS NOT OLD.account
  OR NEW.region IS NOT OLD.region OR NEW.bucket IS NOT OLD.bucket OR NEW.key IS NOT OLD.key
  OR NEW.created_at IS NOT OLD.created_at OR NEW.records IS NOT OLD.records
  OR NEW.first_seq IS NOT OLD.first_seq OR NEW.last_seq IS NOT OLD.last_seq
  OR (OLD.sha256 IS NOT NULL AND NEW.sha256 IS NOT OLD.sha256)
  OR (OLD.newest_event IS NOT NULL AND NEW.newest_event IS NOT OLD.newest_event)
  OR (OLD.oldest_event IS NOT NULL AND NEW.oldest_event IS NOT OLD.oldest_event)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

-- A trail's mark only moves forward, and is never removed or replaced.
CREATE TRIGGER outbox_claims_forward BEFORE UPDATE ON outbox_claims
WHEN NEW.trail_arn IS NOT OLD.trail_arn OR NEW.through_seq < OLD.through_seq
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER outbox_claims_no_delete BEFORE DELETE ON outbox_claims
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER outbox_claims_no_replace BEFORE INSERT ON outbox_claims
WHEN EXISTS (SELECT 1 FROM outbox_claims WHERE trail_arn = NEW.trail_arn)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
