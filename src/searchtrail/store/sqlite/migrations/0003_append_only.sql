-- 0001 made events and event_lookup refuse UPDATE and DELETE. This closes INSERT OR REPLACE on
-- events (at the end), and makes delivery bookkeeping append-only too: a record's log file, a
-- log file's key and hash, and a signed digest never change once fixed, and no row is ever
-- deleted; only the delivery and notification times are updated.

CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
-- A row is claimed by exactly one log file: file_id goes from NULL to a file, once.
CREATE TRIGGER outbox_claimed_once BEFORE UPDATE ON outbox
WHEN OLD.file_id IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.trail_arn IS NOT OLD.trail_arn
  OR NEW.account IS NOT OLD.account OR NEW.region IS NOT OLD.region OR NEW.seq IS NOT OLD.seq
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER log_files_fixed BEFORE UPDATE ON log_files
WHEN NEW.id IS NOT OLD.id OR NEW.trail_arn IS NOT OLD.trail_arn OR NEW.account IS NOT OLD.account
  OR NEW.region IS NOT OLD.region OR NEW.bucket IS NOT OLD.bucket OR NEW.key IS NOT OLD.key
  OR NEW.created_at IS NOT OLD.created_at OR NEW.records IS NOT OLD.records
  OR (OLD.sha256 IS NOT NULL AND NEW.sha256 IS NOT OLD.sha256)
  OR (OLD.newest_event IS NOT NULL AND NEW.newest_event IS NOT OLD.newest_event)
  OR (OLD.oldest_event IS NOT NULL AND NEW.oldest_event IS NOT OLD.oldest_event)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER digests_fixed BEFORE UPDATE ON digests
WHEN NEW.id IS NOT OLD.id OR NEW.trail_arn IS NOT OLD.trail_arn OR NEW.account IS NOT OLD.account
  OR NEW.region IS NOT OLD.region OR NEW.bucket IS NOT OLD.bucket OR NEW.key IS NOT OLD.key
  OR NEW.start_time IS NOT OLD.start_time OR NEW.end_time IS NOT OLD.end_time
  OR NEW.previous_id IS NOT OLD.previous_id OR NEW.sha256 IS NOT OLD.sha256
  OR NEW.signature IS NOT OLD.signature OR NEW.body IS NOT OLD.body
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

-- INSERT OR REPLACE deletes the row it conflicts with without firing delete triggers (unless
-- recursive_triggers is on), so an insert that would replace an existing row is refused first.
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER outbox_no_replace BEFORE INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM outbox WHERE id = NEW.id OR (trail_arn = NEW.trail_arn AND seq = NEW.seq))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER log_files_no_replace BEFORE INSERT ON log_files
WHEN EXISTS (SELECT 1 FROM log_files WHERE id = NEW.id OR (bucket = NEW.bucket AND key = NEW.key))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
CREATE TRIGGER digests_no_replace BEFORE INSERT ON digests
WHEN EXISTS (SELECT 1 FROM digests WHERE id = NEW.id OR (bucket = NEW.bucket AND key = NEW.key))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
