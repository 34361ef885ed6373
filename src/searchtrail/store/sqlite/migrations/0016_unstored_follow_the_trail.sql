-- What was fixed for a bucket a trail has left (UpdateTrail to another bucket, say after its
-- bucket was deleted) and never stored follows the trail (audit/delivery.py): an unstored log
-- file's bucket and key may change, and an unstored digest that ends its chain, of the trail
-- that now delivers to another bucket, may go, to be made again for that bucket. A stored
-- file or digest stays as fixed, and so does everything of a deleted trail.

DROP TRIGGER log_files_fixed;
CREATE TRIGGER log_files_fixed BEFORE UPDATE ON log_files
WHEN NEW.id IS NOT OLD.id OR NEW.trail_arn IS NOT OLD.trail_arn OR NEW.account IS NOT OLD.account
  OR NEW.region IS NOT OLD.region
  OR ((NEW.bucket IS NOT OLD.bucket OR NEW.key IS NOT OLD.key)
      AND NOT (OLD.delivered_at IS NULL AND NEW.delivered_at IS NULL))
  OR NEW.created_at IS NOT OLD.created_at OR NEW.records IS NOT OLD.records
  OR NEW.first_seq IS NOT OLD.first_seq OR NEW.last_seq IS NOT OLD.last_seq
  OR (OLD.sha256 IS NOT NULL AND NEW.sha256 IS NOT OLD.sha256)
  OR (OLD.newest_event IS NOT NULL AND NEW.newest_event IS NOT OLD.newest_event)
  OR (OLD.oldest_event IS NOT NULL AND NEW.oldest_event IS NOT OLD.oldest_event)
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
  AND NOT (OLD.delivered_at IS NULL
           AND EXISTS (SELECT 1 FROM resources
                       WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                       AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn
                       AND json_extract(doc, '$.S3BucketName') <> OLD.bucket
                       AND OLD.end_time > CASE WHEN json_extract(doc, '$.RecordsAfterSeq') IS NULL
                                               THEN -1
                                               ELSE coalesce(json_extract(doc, '$.CreatedTime'), -1)
                                               END)
           AND NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                           AND account = OLD.account AND region = OLD.region
                           AND end_time > OLD.end_time))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
