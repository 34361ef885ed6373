-- As SQLite's 0014: a deleted trail's delivery bookkeeping leaves in full even when a trail is
-- made again under its ARN. A row is a deleted trail's when no trail has its ARN, or when it
-- lies before the trail that has it: a log file holding records up to that trail's
-- RecordsAfterSeq, a digest ended by its CreatedTime (a trail made before RecordsAfterSeq was
-- kept owns every row, as before). Once the store holds none of that trail's records (no outbox rows up to the same
-- seq), such a row made, or ended, a day or more ago may go, stored or not. Every other row
-- keeps 0013's rules; outbox_claims keeps 0014's (trail_is_gone).

CREATE OR REPLACE FUNCTION refuse_unless_expired_bookkeeping() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    day_ago DOUBLE PRECISION := extract(epoch FROM now()) - 86400;
    trail JSONB;
    records_after BIGINT := 9223372036854775807;  -- no trail has the ARN: every row is older
    created DOUBLE PRECISION := 'Infinity';
    older BOOLEAN;
    expired BOOLEAN;
BEGIN
    SELECT doc::jsonb INTO trail FROM resources WHERE account = split_part(OLD.trail_arn, ':', 5)
        AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn;
    IF FOUND THEN
        records_after := coalesce((trail ->> 'RecordsAfterSeq')::BIGINT, -1);
        created := CASE WHEN trail -> 'RecordsAfterSeq' IS NOT NULL
                        THEN coalesce((trail ->> 'CreatedTime')::DOUBLE PRECISION, -1)
                        ELSE -1 END;
    END IF;
    IF TG_TABLE_NAME = 'log_files' THEN
        older := coalesce(OLD.last_seq, 1) <= records_after;
    ELSE
        older := OLD.end_time <= created;
    END IF;
    IF older AND NOT EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn
                             AND seq <= records_after) THEN
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
