-- The delivery worker asks on every tick (up to five times a second) for every account's
-- trails: region '' and kind 'cloudtrail.trail', with no account. The primary key starts with
-- the account, so that question read the whole resources table, every policy, collection and
-- idempotency record of every account. This partial index holds only the trails.
CREATE INDEX resources_trails ON resources (kind) WHERE region = '' AND kind = 'cloudtrail.trail';
