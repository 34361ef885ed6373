-- TRUNCATE fires no row trigger, so the append-only rules of 0006 and later did not hold for
-- it: it is refused outright on every table that records history or its delivery. (SQLite has
-- no TRUNCATE; its DELETE without WHERE runs the row triggers.)

CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER event_lookup_no_truncate BEFORE TRUNCATE ON event_lookup
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER retention_no_truncate BEFORE TRUNCATE ON retention
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('delivery records are append-only');
CREATE TRIGGER outbox_claims_no_truncate BEFORE TRUNCATE ON outbox_claims
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('delivery records are append-only');
CREATE TRIGGER log_files_no_truncate BEFORE TRUNCATE ON log_files
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('delivery records are append-only');
CREATE TRIGGER digests_no_truncate BEFORE TRUNCATE ON digests
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('delivery records are append-only');
