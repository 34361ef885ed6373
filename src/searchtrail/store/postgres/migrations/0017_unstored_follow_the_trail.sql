-- As SQLite's 0016: what was fixed for a bucket a trail has left (UpdateTrail to another
-- bucket, say after its bucket was deleted) and never stored follows the trail
-- (audit/delivery.py): an unstored log file's bucket and key may change, and an unstored
-- digest that ends its chain, of the trail that now delivers to another bucket, may go, to be
-- made again for that bucket. A stored file or digest stays as fixed, and so does everything
-- of a deleted trail. The function is 0015's with that one allowance added.

DROP TRIGGER log_files_fixed ON log_files;
CREATE TRIGGER log_files_fixed BEFORE UPDATE ON log_files FOR EACH ROW
WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.trail_arn IS DISTINCT FROM OLD.trail_arn
  OR NEW.account IS DISTINCT FROM OLD.account OR NEW.region IS DISTINCT FROM OLD.region
  OR ((NEW.bucket IS DISTINCT FROM OLD.bucket OR NEW.key IS DISTINCT FROM OLD.key)
      AND NOT (OLD.delivered_at IS NULL AND NEW.delivered_at IS NULL))
  OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.records IS DISTINCT FROM OLD.records
  OR NEW.first_seq IS DISTINCT FROM OLD.first_seq OR NEW.last_seq IS DISTINCT FROM OLD.last_seq
  OR (OLD.sha256 IS NOT NULL AND NEW.sha256 IS DISTINCT FROM OLD.sha256)
  OR (OLD.newest_event IS NOT NULL AND NEW.newest_event IS DISTINCT FROM OLD.newest_event)
  OR (OLD.oldest_event IS NOT NULL AND NEW.oldest_event IS DISTINCT FROM OLD.oldest_event))
EXECUTE FUNCTION refuse_change('delivery records are append-only');

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
    -- a digest of the trail never stored that ends its chain, when the trail now delivers to
    -- another bucket: made again for that bucket (nested: a log_files row has no end_time,
    -- and PL/pgSQL resolves the whole condition)
    IF TG_TABLE_NAME = 'digests' AND trail IS NOT NULL AND NOT older THEN
        IF OLD.delivered_at IS NULL AND trail ->> 'S3BucketName' <> OLD.bucket
           AND NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                           AND account = OLD.account AND region = OLD.region
                           AND end_time > OLD.end_time) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'delivery records are append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
