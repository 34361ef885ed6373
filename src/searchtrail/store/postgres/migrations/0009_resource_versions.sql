-- A counter per resource kind that every change to a row of that kind moves, whatever node or
-- path makes it: a writer keeps what it cached of resources from one write transaction to the
-- next only for kinds whose counter has not moved (store/sqlite/writer.py). Resource rows are
-- written inside write transactions, which take turns, so a counter's row is never contended.
CREATE TABLE resource_versions (
    kind    TEXT COLLATE "C" PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO resource_versions (kind, version) SELECT DISTINCT kind, 0 FROM resources;
CREATE FUNCTION resource_row_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO resource_versions (kind, version) VALUES (OLD.kind, 1)
        ON CONFLICT (kind) DO UPDATE SET version = resource_versions.version + 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO resource_versions (kind, version) VALUES (NEW.kind, 1)
        ON CONFLICT (kind) DO UPDATE SET version = resource_versions.version + 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER resources_version AFTER INSERT OR UPDATE OR DELETE ON resources
FOR EACH ROW EXECUTE FUNCTION resource_row_moved();
CREATE FUNCTION resources_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE resource_versions SET version = version + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER resources_truncate_version AFTER TRUNCATE ON resources
FOR EACH STATEMENT EXECUTE FUNCTION resources_truncated();
