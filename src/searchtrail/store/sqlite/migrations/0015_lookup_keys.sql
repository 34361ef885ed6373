-- Lookup rows keyed by one integer per (account, Region, attribute, value) instead of the four
-- texts (store/lookupkeys.py: the first 8 bytes of a SHA-256, registered on the migrating
-- connection as lookup_key()). A row shrinks from ~80 bytes to ~20, a read call's lookup rows
-- from ~500 bytes of the store to ~130, and a batch's inserts and deletes compare integers.
-- Rows are copied in key order, so the new table is written front to back.

CREATE TABLE event_lookup_keyed (
    value_key  INTEGER NOT NULL,
    event_time INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (value_key, event_time, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO event_lookup_keyed (value_key, event_time, seq)
SELECT lookup_key(account, region, attr, value) AS value_key, event_time, seq FROM event_lookup
ORDER BY value_key, event_time, seq;
DROP TABLE event_lookup;
ALTER TABLE event_lookup_keyed RENAME TO event_lookup;
CREATE TRIGGER event_lookup_no_update BEFORE UPDATE ON event_lookup
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_lookup_no_delete BEFORE DELETE ON event_lookup
WHEN OLD.seq > (SELECT pruned_through FROM retention)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
