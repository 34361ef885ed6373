-- As SQLite's 0017: retention around a trail that does not deliver (audit/retention.py).
-- Records above the mark that no undelivering trail takes may leave once expired, so one
-- failing trail keeps only its own records. A record, its lookup rows and its outbox rows can
-- be deleted at or below the mark, as before, or above it once the record is a day old or more
-- (by the database's clock, as the mark's own rule) and is not the newest. The age is read
-- from the record itself for all three tables: a BEFORE DELETE trigger still sees its row, and
-- retention deletes the record last. Without a record the row stays.

CREATE OR REPLACE FUNCTION refuse_unless_pruned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq <= (SELECT pruned_through FROM retention) THEN
        RETURN OLD;
    END IF;
    IF OLD.seq < (SELECT max(seq) FROM events)
       AND (SELECT event_time FROM events WHERE seq = OLD.seq)
           <= extract(epoch FROM now()) - 86400 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;
