-- Retention around a trail that does not deliver (audit/retention.py): the mark still stops
-- below the oldest record an existing trail has not delivered, and records above it that no
-- such trail takes may leave too once expired, so one failing trail keeps only its own
-- records. A record, its lookup rows and its outbox rows can now be deleted at or below the
-- mark, as before, or above it once the record is a day old or more (by SQLite's clock, as
-- the mark's own rule) and is not the newest (whose seq the next ones follow). Anything
-- younger stays append-only; so does every UPDATE.

DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN OLD.seq > (SELECT pruned_through FROM retention)
  AND (OLD.event_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
       OR OLD.seq >= (SELECT max(seq) FROM events))
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
DROP TRIGGER event_lookup_no_delete;
CREATE TRIGGER event_lookup_no_delete BEFORE DELETE ON event_lookup
WHEN OLD.seq > (SELECT pruned_through FROM retention)
  AND (OLD.event_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400
       OR OLD.seq >= (SELECT max(seq) FROM events))
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
-- an outbox row's age is its record's (deleted after it); without a record, it stays
DROP TRIGGER outbox_no_delete;
CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox
WHEN OLD.seq > (SELECT pruned_through FROM retention)
  AND (coalesce((SELECT event_time FROM events WHERE seq = OLD.seq), 9e18)
         > CAST(strftime('%s', 'now') AS INTEGER) - 86400
       OR OLD.seq >= (SELECT max(seq) FROM events))
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
