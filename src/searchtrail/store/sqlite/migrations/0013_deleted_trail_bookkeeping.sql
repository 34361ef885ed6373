-- A deleted trail's delivery bookkeeping leaves in full (audit/retention.py). 0012 keeps each
-- chain's newest log-file and digest row, every row never stored, and outbox_claims every
-- trail's mark, for the trail's next claim, upload and digest; a trail that no longer exists
-- makes none of them. Once it has no outbox rows left either (its records expired), so nothing
-- could be claimed again:
--   * any of its log-file rows made, and digest rows ended, a day or more ago go, stored or
--     not (what it never stored, it never will);
--   * its outbox_claims row goes once it has no log-file rows.
-- The trail exists while its resource row does (scope: the owner account of its ARN, whose
-- 12 digits stand just before ":trail/"; trail names hold no colon). A trail made again under
-- the same ARN keeps what the deleted one left under 0012's rules.

DROP TRIGGER log_files_no_delete;
CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
WHEN CASE WHEN EXISTS (SELECT 1 FROM resources
                       WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                       AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
            OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn)
     THEN OLD.delivered_at IS NULL OR OLD.notified_at IS NULL OR OLD.last_seq IS NULL
          OR OLD.delivered_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400
          OR NOT EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND last_seq > OLD.last_seq)
     ELSE OLD.created_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400 END
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER digests_no_delete;
CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
WHEN CASE WHEN EXISTS (SELECT 1 FROM resources
                       WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                       AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
            OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn)
     THEN OLD.delivered_at IS NULL
          OR OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
          OR NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                         AND account = OLD.account AND region = OLD.region
                         AND end_time > OLD.end_time)
     ELSE OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400 END
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER outbox_claims_no_delete;
CREATE TRIGGER outbox_claims_no_delete BEFORE DELETE ON outbox_claims
WHEN EXISTS (SELECT 1 FROM resources
             WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
             AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
  OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn)
  OR EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
