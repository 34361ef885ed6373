-- Console downloads' progress, kept in the store so a progress poll answered by any node finds
-- the download another node serves. Written outside the write transactions; the newest 200
-- are kept (console/export.py).
CREATE TABLE console_exports (
    name       TEXT COLLATE "C" PRIMARY KEY,  -- sha256 of (console session, export id)
    state      TEXT NOT NULL,                 -- {"events": n, "done": bool, "failed": why}
    updated_at DOUBLE PRECISION NOT NULL      -- epoch seconds
);
CREATE INDEX console_exports_by_time ON console_exports (updated_at);
