-- The delivery worker asks on every tick which of a trail's log files still wait for their
-- notification and which of its digests still wait for their upload. Answered from the trail's
-- (trail_arn, ...) indexes, each question read every file or digest the trail ever had: a
-- year of a multi-Region trail is hundreds of thousands of rows, twice a second. These partial
-- indexes hold only the rows still waiting, so the questions cost a seek.
-- (A log file is notified only once delivered, so notified_at IS NULL also covers every file
-- not delivered yet.)
CREATE INDEX log_files_unnotified ON log_files (trail_arn, id) WHERE notified_at IS NULL;
CREATE INDEX digests_undelivered ON digests (trail_arn, id) WHERE delivered_at IS NULL;
