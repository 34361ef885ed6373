-- Retention: events past the event-history window leave the store once every trail has them
-- in a delivered log file (audit/retention.py). Records stay append-only otherwise:
--   * retention.pruned_through is the seq through which records may have been removed; it only
--     moves forward, never past the newest record (whose seq the next ones follow), and never
--     over a record less than a day old;
--   * a record, its lookup rows and its outbox rows can be deleted only at or below that mark;
--     every other UPDATE or DELETE is refused as before.

CREATE TABLE retention (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO retention (id, pruned_through) VALUES (1, 0);

CREATE TRIGGER retention_forward BEFORE UPDATE ON retention
WHEN NEW.id IS NOT OLD.id OR NEW.pruned_through < OLD.pruned_through
  OR NEW.pruned_through >= (SELECT coalesce(max(seq), 0) FROM events)
     AND NEW.pruned_through > OLD.pruned_through
  OR EXISTS (SELECT 1 FROM events WHERE seq > OLD.pruned_through AND seq <= NEW.pruned_through
             AND event_time > CAST(strftime('%s', 'now') AS INTEGER) - 86400)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER retention_no_delete BEFORE DELETE ON retention
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER retention_no_replace BEFORE INSERT ON retention
WHEN EXISTS (SELECT 1 FROM retention)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN OLD.seq > (SELECT pruned_through FROM retention)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
DROP TRIGGER event_lookup_no_delete;
CREATE TRIGGER event_lookup_no_delete BEFORE DELETE ON event_lookup
WHEN OLD.seq > (SELECT pruned_through FROM retention)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
DROP TRIGGER outbox_no_delete;
CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox
WHEN OLD.seq > (SELECT pruned_through FROM retention)
BEGIN SELECT RAISE(ABORT, 'delivery records are append-only'); END;
