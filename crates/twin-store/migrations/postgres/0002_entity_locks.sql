-- Writers of an entity serialise on its row here (taken with one upsert per batch, in id order, for entities that
-- exist or not), instead of one advisory lock per entity: a batch of thousands of entities would fill PostgreSQL's
-- shared lock table (max_locks_per_transaction x max_connections slots), row locks take no room there.
CREATE TABLE entity_locks (
    id text COLLATE "C" PRIMARY KEY
);
