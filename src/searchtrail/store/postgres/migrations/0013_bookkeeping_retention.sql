-- As SQLite's 0012: log-file and digest rows older than the event-history window leave the
-- store too (audit/retention.py). A row can be deleted only when
--   * a log file's is delivered and notified a day or more ago (by the database's clock), and
--     a newer file of its trail, account and Region exists (the newest holds the group's
--     claimed-through mark);
--   * a digest's is delivered, ended a day or more ago, and a later digest of its chain exists
--     (the newest is the next digest's previous one).

CREATE FUNCTION refuse_unless_expired_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    day_ago DOUBLE PRECISION := extract(epoch FROM now()) - 86400;
    expired BOOLEAN;
BEGIN
    IF TG_TABLE_NAME = 'log_files' THEN
        expired := OLD.delivered_at IS NOT NULL AND OLD.notified_at IS NOT NULL
            AND OLD.last_seq IS NOT NULL AND OLD.delivered_at <= day_ago
            AND EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                        AND account = OLD.account AND region = OLD.region
                        AND last_seq > OLD.last_seq);
    ELSE
        expired := OLD.delivered_at IS NOT NULL AND OLD.end_time <= day_ago
            AND EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                        AND account = OLD.account AND region = OLD.region
                        AND end_time > OLD.end_time);
    END IF;
    IF expired THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'delivery records are append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
DROP TRIGGER log_files_no_delete ON log_files;
CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
FOR EACH ROW EXECUTE FUNCTION refuse_unless_expired_bookkeeping();
DROP TRIGGER digests_no_delete ON digests;
CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
FOR EACH ROW EXECUTE FUNCTION refuse_unless_expired_bookkeeping();

-- A chain's oldest kept digest names a removed one as its previous: the id stays as it was
-- signed into the row (the digest file names the previous by key and signature, not by id).
ALTER TABLE digests DROP CONSTRAINT digests_previous_id_fkey;
