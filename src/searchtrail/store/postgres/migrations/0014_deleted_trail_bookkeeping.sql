-- As SQLite's 0013: a deleted trail's last delivery bookkeeping may leave too
-- (audit/retention.py). Once the trail's resource row is gone and it has no outbox rows left,
--   * its chains' newest log-file and digest rows go on 0013's other conditions (delivered,
--     notified, a day or more ago);
--   * its outbox_claims row goes once it has no log-file rows either.

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
    IF TG_TABLE_NAME = 'log_files' THEN
        expired := OLD.delivered_at IS NOT NULL AND OLD.notified_at IS NOT NULL
            AND OLD.last_seq IS NOT NULL AND OLD.delivered_at <= day_ago
            AND (EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND last_seq > OLD.last_seq)
                 OR trail_is_gone(OLD.trail_arn));
    ELSE
        expired := OLD.delivered_at IS NOT NULL AND OLD.end_time <= day_ago
            AND (EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND end_time > OLD.end_time)
                 OR trail_is_gone(OLD.trail_arn));
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
