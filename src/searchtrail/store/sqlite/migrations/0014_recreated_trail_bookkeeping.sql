-- A deleted trail's delivery bookkeeping leaves in full even when a trail is made again under
-- its ARN (audit/retention.py). 0013 judged by the ARN alone, so the rows a deleted trail left
-- stayed under 0012's rules for as long as a trail of the same name existed: its chains'
-- newest rows and every row it never stored, for ever.
-- A row is a deleted trail's when no trail has its ARN, or when it lies before the trail that
-- has it: a log file holding records up to that trail's RecordsAfterSeq, a digest ended by its
-- CreatedTime (delivery.py's OWN_LOG_FILE and OWN_DIGEST; a trail made before RecordsAfterSeq
-- was kept owns every row, as before: -1). Once the store holds none of that trail's records
-- (no outbox rows up to the same seq), such a row made, or ended, a day or more ago may go,
-- stored or not.
-- Every other row keeps 0012's rules; outbox_claims keeps 0013's (a trail made again keeps
-- the mark).

DROP TRIGGER log_files_no_delete;
CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
WHEN CASE WHEN coalesce(OLD.last_seq, 1) <= coalesce(
                   (SELECT coalesce(json_extract(doc, '$.RecordsAfterSeq'), -1) FROM resources
                    WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                    AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn),
                   9223372036854775807)
            AND NOT EXISTS (
                SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn AND seq <= coalesce(
                    (SELECT coalesce(json_extract(doc, '$.RecordsAfterSeq'), -1) FROM resources
                     WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                     AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn),
                    9223372036854775807))
     THEN OLD.created_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400
     ELSE OLD.delivered_at IS NULL OR OLD.notified_at IS NULL OR OLD.last_seq IS NULL
          OR OLD.delivered_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400
          OR NOT EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND last_seq > OLD.last_seq) END
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER digests_no_delete;
CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
WHEN CASE WHEN OLD.end_time <= coalesce(
                   (SELECT CASE WHEN json_extract(doc, '$.RecordsAfterSeq') IS NULL THEN -1
                                ELSE coalesce(json_extract(doc, '$.CreatedTime'), -1) END
                    FROM resources
                    WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                    AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn),
                   9e999)
            AND NOT EXISTS (
                SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn AND seq <= coalesce(
                    (SELECT coalesce(json_extract(doc, '$.RecordsAfterSeq'), -1) FROM resources
                     WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                     AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn),
                    9223372036854775807))
     THEN OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
     ELSE OLD.delivered_at IS NULL
          OR OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
          OR NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND end_time > OLD.end_time) END
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
