-- Cheaper outbox rows for API calls and cheaper claims for the delivery worker; what a row may
-- become does not change. Every API call recorded for a logging trail adds an outbox row, in
-- the batch that the writer commits: each index entry and each page it dirties is paid there.
--
-- The outbox's two indexes each serve one side of the file_id NULL -> file transition, so each
-- now holds only that side's rows (partial indexes, same names):
--   outbox_unassigned: rows no log file has claimed yet, by account folder and region, for
--     the delivery worker's claims. It holds the backlog instead of every row ever recorded,
--     and a claim deletes entries instead of moving them. Its key leaves out the trail ARN
--     (a claim checks it on the row): the ARN made each entry about three times as long, so
--     pages filled and split, and commits wrote them, about that much more often.
--   outbox_by_file: claimed rows by file, for reading a log file's records. An API call's new,
--     unclaimed row no longer adds an entry here that its claim would then move.
-- A query uses a partial index only when it names the index's condition (file_id IS NULL, or
-- file_id = ?); the worker names outbox_unassigned as well (INDEXED BY).

DROP INDEX outbox_unassigned;
CREATE INDEX outbox_unassigned ON outbox (account, region, id) WHERE file_id IS NULL;

DROP INDEX outbox_by_file;
CREATE INDEX outbox_by_file ON outbox (file_id, seq) WHERE file_id IS NOT NULL;

-- The same refusal of INSERT OR REPLACE as 0003's outbox_no_replace, checked for every row an
-- API call adds: EXISTS (a OR b) is EXISTS a OR EXISTS b, and two plain index lookups cost
-- less than the one OR-query (a multi-index OR that collects row ids first). It is replaced
-- within this migration's transaction, so no insert ever runs without it.
DROP TRIGGER outbox_no_replace;
CREATE TRIGGER outbox_no_replace BEFORE INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM outbox WHERE id = NEW.id)
  OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = NEW.trail_arn AND seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
