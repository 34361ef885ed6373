-- Console downloads' progress, as on PostgreSQL, where a progress poll answered by any node
-- must find the download another node serves. A server on SQLite keeps it in memory, or with
-- several workers in files (console/export.py), off SQLite's one writer; the table is here so
-- both stores have one schema.
CREATE TABLE console_exports (
    name       TEXT PRIMARY KEY,  -- sha256 of (console session, export id)
    state      TEXT NOT NULL,     -- {"events": n, "done": bool, "failed": why}
    updated_at REAL NOT NULL      -- epoch seconds
);
CREATE INDEX console_exports_by_time ON console_exports (updated_at);
