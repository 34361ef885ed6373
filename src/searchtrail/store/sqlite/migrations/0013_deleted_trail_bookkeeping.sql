-- A deleted trail's last delivery bookkeeping may leave too (audit/retention.py). 0012 keeps
-- each chain's newest log-file and digest row, and outbox_claims every trail's mark, for the
-- trail's next claim and next digest; a trail that no longer exists makes neither. Once it has
-- no outbox rows left (its records expired), so nothing could be claimed again, these go:
--   * its chains' newest log-file and digest rows, on 0012's other conditions (delivered,
--     notified, a day or more ago);
--   * its outbox_claims row, once it has no log-file rows either.
-- The trail exists while its resource row does (scope: the owner account of its ARN, whose
-- 12 digits stand just before ":trail/"; trail names hold no colon). A trail made again under
-- the same ARN starts afresh: new claims and a new digest chain.

DROP TRIGGER log_files_no_delete;
CREATE TRIGGER log_files_no_delete BEFORE DELETE ON log_files
WHEN OLD.delivered_at IS NULL OR OLD.notified_at IS NULL OR OLD.last_seq IS NULL
  OR OLD.delivered_at > CAST(strftime('%s', 'now') AS INTEGER) - 86400
  OR NOT EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn
                 AND account = OLD.account AND region = OLD.region AND last_seq > OLD.last_seq)
     AND (EXISTS (SELECT 1 FROM resources
                  WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                  AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
          OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER digests_no_delete;
CREATE TRIGGER digests_no_delete BEFORE DELETE ON digests
WHEN OLD.delivered_at IS NULL
  OR OLD.end_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
  OR NOT EXISTS (SELECT 1 FROM digests WHERE trail_arn = OLD.trail_arn
                 AND account = OLD.account AND region = OLD.region AND end_time > OLD.end_time)
     AND (EXISTS (SELECT 1 FROM resources
                  WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
                  AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
          OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;

DROP TRIGGER outbox_claims_no_delete;
CREATE TRIGGER outbox_claims_no_delete BEFORE DELETE ON outbox_claims
WHEN EXISTS (SELECT 1 FROM resources
             WHERE account = substr(OLD.trail_arn, instr(OLD.trail_arn, ':trail/') - 12, 12)
             AND region = '' AND kind = 'cloudtrail.trail' AND key = OLD.trail_arn)
  OR EXISTS (SELECT 1 FROM outbox WHERE trail_arn = OLD.trail_arn)
  OR EXISTS (SELECT 1 FROM log_files WHERE trail_arn = OLD.trail_arn)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
