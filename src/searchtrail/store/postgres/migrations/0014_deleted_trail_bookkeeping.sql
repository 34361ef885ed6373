-- As SQLite's 0013: a deleted trail's delivery bookkeeping leaves in full
-- (audit/retention.py). Once the trail's resource row is gone and it has no outbox rows left,
--   * any of its log-file rows made, and digest rows ended, a day or more ago go, stored or
--     not;
--   * its outbox_claims row goes once it has no log-file rows.
-- Rows of a trail that exists, or still has outbox rows, keep 0013's rules.

CREATE FUNCTION trail_is_gone(arn TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM resources WHERE account = split_part(arn, ':', 5)
                       AND region = '' AND kind = 'cloudtrail.trail' AND key = arn)
       AND NOT EXISTS (SELECT 1 FROM outbox WHERE trail_arn = arn)
$$;

CREATE OR REPLACE FUNCTION refuse_unless_expired_bookkeeping() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    day_ago DOUBLE PRECISION := extract(epoch FROM now()) - 86400;
    expired BOOLEAN;
BEGIN
    IF trail_is_gone(OLD.trail_arn) THEN
        IF TG_TABLE_NAME = 'log_files' THEN
            expired := OLD.created_at <= day_ago;
        ELSE
            expired := OLD.end_time <= day_ago;
        END IF;
    ELSIF TG_TABLE_NAME = 'log_files' THEN
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

CREATE FUNCTION refuse_unless_trail_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF trail_is_gone(OLD.trail_arn)
       AND NOT EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'delivery records are append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
DROP TRIGGER outbox_claims_no_delete ON outbox_claims;
CREATE TRIGGER outbox_claims_no_delete BEFORE DELETE ON outbox_claims
FOR EACH ROW EXECUTE FUNCTION refuse_unless_trail_gone();
