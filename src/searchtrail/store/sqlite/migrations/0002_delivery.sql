-- One row per (trail, record): written with the record, assigned to exactly one log file.
CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY,
    trail_arn TEXT NOT NULL,
    account   TEXT NOT NULL,  -- whose AWSLogs/<account>/ folder the record goes to
    region    TEXT NOT NULL,  -- the record's awsRegion
    seq       INTEGER NOT NULL REFERENCES events (seq),
    file_id   INTEGER,        -- NULL until a log file claims the row
    UNIQUE (trail_arn, seq)
);
CREATE INDEX outbox_unassigned ON outbox (trail_arn, file_id, account, region, id);
CREATE INDEX outbox_by_file ON outbox (file_id, seq);

-- Log files: created (key fixed) before upload, so a retry rewrites the same object.
CREATE TABLE log_files (
    id           INTEGER PRIMARY KEY,
    trail_arn    TEXT NOT NULL,
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    created_at   REAL NOT NULL,
    records      INTEGER NOT NULL,
    sha256       TEXT,
    newest_event INTEGER,        -- epoch seconds of the newest / oldest record's eventTime
    oldest_event INTEGER,
    delivered_at REAL,           -- NULL while the upload is pending
    notified_at  REAL,           -- NULL while a notification is owed
    UNIQUE (bucket, key)
);
CREATE INDEX log_files_pending ON log_files (trail_arn, delivered_at);
CREATE INDEX log_files_delivered ON log_files (trail_arn, account, region, delivered_at);

-- Digest files: one chain per (trail, account, region), each row fixed before upload.
CREATE TABLE digests (
    id           INTEGER PRIMARY KEY,
    trail_arn    TEXT NOT NULL,
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    start_time   REAL NOT NULL,
    end_time     REAL NOT NULL,
    previous_id  INTEGER REFERENCES digests (id),
    sha256       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    body         BLOB NOT NULL,  -- the gzip bytes: a retry uploads exactly what was signed
    delivered_at REAL,
    UNIQUE (bucket, key)
);
CREATE INDEX digests_chain ON digests (trail_arn, account, region, end_time);
