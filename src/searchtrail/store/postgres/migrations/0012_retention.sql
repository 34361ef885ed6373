-- As SQLite's 0011: events past the event-history window leave the store once every trail has
-- them in a delivered log file (audit/retention.py). retention.pruned_through only moves
-- forward, never past the newest record and never over a record less than a day old; a
-- record, its lookup rows and its outbox rows can be deleted only at or below it. (A trigger's
-- WHEN cannot hold a subquery here, so the functions test the mark.)

CREATE TABLE retention (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO retention (id, pruned_through) VALUES (1, 0);

CREATE FUNCTION retention_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.pruned_through < OLD.pruned_through
       OR (NEW.pruned_through > OLD.pruned_through
           AND NEW.pruned_through >= (SELECT coalesce(max(seq), 0) FROM events))
       OR EXISTS (SELECT 1 FROM events WHERE seq > OLD.pruned_through
                  AND seq <= NEW.pruned_through
                  AND event_time > extract(epoch FROM now()) - 86400) THEN
        RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER retention_forward BEFORE UPDATE ON retention
FOR EACH ROW EXECUTE FUNCTION retention_forward();
CREATE TRIGGER retention_no_delete BEFORE DELETE ON retention
FOR EACH ROW EXECUTE FUNCTION refuse_change('events are append-only');

-- A deletion at or below the mark goes ahead; any other is refused with the table's message.
CREATE FUNCTION refuse_unless_pruned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq <= (SELECT pruned_through FROM retention) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;

DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER events_pruned_only BEFORE DELETE ON events
FOR EACH ROW EXECUTE FUNCTION refuse_unless_pruned('events are append-only');
DROP TRIGGER event_lookup_append_only ON event_lookup;
CREATE TRIGGER event_lookup_append_only BEFORE UPDATE ON event_lookup
FOR EACH ROW EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER event_lookup_pruned_only BEFORE DELETE ON event_lookup
FOR EACH ROW EXECUTE FUNCTION refuse_unless_pruned('events are append-only');
DROP TRIGGER outbox_fixed ON outbox;
CREATE TRIGGER outbox_fixed BEFORE UPDATE ON outbox
FOR EACH ROW EXECUTE FUNCTION refuse_change('delivery records are append-only');
CREATE TRIGGER outbox_pruned_only BEFORE DELETE ON outbox
FOR EACH ROW EXECUTE FUNCTION refuse_unless_pruned('delivery records are append-only');

-- SQLite does not enforce the outbox's reference to its record; here it made every record's
-- deletion search the whole outbox (there is no index by seq alone), and every outbox row's
-- insert look its record up. Both are written in one transaction, and removed together.
ALTER TABLE outbox DROP CONSTRAINT outbox_seq_fkey;
