-- A kind's version is now the id of the last transaction that changed a row of it, set once
-- per statement and written only when it differs. 0009 moved it by one for every row, so a
-- statement deleting N rows of a kind (a day's expired idempotency records) updated one row
-- N times in one transaction, and each update walked the chain of that row's earlier
-- versions: O(N^2), seconds for tens of thousands, while the write lock kept every node
-- waiting. A transaction id is never reused, so a version still moves whenever any other
-- transaction changes its kind.
DROP TRIGGER resources_version ON resources;
DROP FUNCTION resource_row_moved();
DROP TRIGGER resources_truncate_version ON resources;
DROP FUNCTION resources_truncated();
-- Above every counter of 0009 (they were small; transaction ids go on from here).
UPDATE resource_versions SET version = pg_current_xact_id()::text::bigint;
CREATE FUNCTION resource_rows_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    this_transaction BIGINT := pg_current_xact_id()::text::bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO resource_versions (kind, version)
        SELECT DISTINCT kind, this_transaction FROM new_rows
        ON CONFLICT (kind) DO UPDATE SET version = EXCLUDED.version
        WHERE resource_versions.version <> EXCLUDED.version;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO resource_versions (kind, version)
        SELECT DISTINCT kind, this_transaction FROM old_rows
        ON CONFLICT (kind) DO UPDATE SET version = EXCLUDED.version
        WHERE resource_versions.version <> EXCLUDED.version;
    ELSE
        INSERT INTO resource_versions (kind, version)
        SELECT kind, this_transaction FROM old_rows
        UNION SELECT kind, this_transaction FROM new_rows
        ON CONFLICT (kind) DO UPDATE SET version = EXCLUDED.version
        WHERE resource_versions.version <> EXCLUDED.version;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER resources_version_on_insert AFTER INSERT ON resources
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION resource_rows_moved();
CREATE TRIGGER resources_version_on_update AFTER UPDATE ON resources
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION resource_rows_moved();
CREATE TRIGGER resources_version_on_delete AFTER DELETE ON resources
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION resource_rows_moved();
CREATE FUNCTION resources_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE resource_versions SET version = pg_current_xact_id()::text::bigint;
    RETURN NULL;
END;
$$;
CREATE TRIGGER resources_truncate_version AFTER TRUNCATE ON resources
FOR EACH STATEMENT EXECUTE FUNCTION resources_truncated();
