-- Failed console sign-ins, kept in the store so every node sharing it applies one limit per
-- user and per source address. Rows older than the throttle's window are pruned on write.
CREATE TABLE signin_failures (
    key TEXT COLLATE "C" NOT NULL,  -- 'user:<account>/<lower-cased name>' or 'address:<source IP>'
    at  DOUBLE PRECISION NOT NULL  -- epoch seconds of the failure
);
CREATE INDEX signin_failures_by_key ON signin_failures (key, at);
CREATE INDEX signin_failures_by_time ON signin_failures (at);
