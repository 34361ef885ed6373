-- Resources of every service as JSON documents, scoped to (account, region); region '' is global.
CREATE TABLE resources (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (account, region, kind, key)
) WITHOUT ROWID;

-- CloudTrail records, append-only; seq is the commit order, record the exact JSON served.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    record     TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (account, region, event_time, seq);

-- One narrow row per lookup attribute value, written in the same transaction as the event.
CREATE TABLE event_lookup (
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    attr       TEXT NOT NULL,
    value      TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (account, region, attr, value, event_time, seq)
) WITHOUT ROWID;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_lookup_no_update BEFORE UPDATE ON event_lookup
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER event_lookup_no_delete BEFORE DELETE ON event_lookup
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Server secrets (token signing key and the like), created once.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
