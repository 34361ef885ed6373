-- A counter per resource kind that every change to a row of that kind moves, whatever process
-- or path makes it: a writer keeps what it cached of resources from one write transaction to
-- the next only for kinds whose counter has not moved (store/sqlite/writer.py).
CREATE TABLE resource_versions (
    kind    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO resource_versions (kind, version) SELECT DISTINCT kind, 0 FROM resources;
CREATE TRIGGER resources_version_on_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_versions VALUES (NEW.kind, 1)
    ON CONFLICT (kind) DO UPDATE SET version = version + 1; END;
-- an update moves its old kind's and its new kind's (once when they are the same)
CREATE TRIGGER resources_version_on_update AFTER UPDATE ON resources BEGIN
    INSERT INTO resource_versions SELECT OLD.kind, 1 UNION SELECT NEW.kind, 1 WHERE true
    ON CONFLICT (kind) DO UPDATE SET version = version + 1; END;
CREATE TRIGGER resources_version_on_delete AFTER DELETE ON resources BEGIN
    INSERT INTO resource_versions VALUES (OLD.kind, 1)
    ON CONFLICT (kind) DO UPDATE SET version = version + 1; END;
