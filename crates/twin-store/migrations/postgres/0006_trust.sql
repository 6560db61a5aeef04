-- Trust by design (see the `trust` module).
--
-- Reads are filtered by dataset (EntityQuery::datasets): the dataset indexes, and the dataset of an entity's history
-- (temporal_entities.dataset), kept that of the entity by triggers: when the entity is written into another dataset,
-- when it is created (again), and when its history starts (from the entity, if there is one; else NULL, the default
-- dataset). A deleted entity's history keeps the dataset it last had.
ALTER TABLE temporal_entities ADD COLUMN dataset text;
UPDATE temporal_entities t SET dataset = e.dataset FROM entities e WHERE e.id = t.id AND e.dataset IS NOT NULL;
CREATE INDEX entities_dataset ON entities (dataset);
CREATE INDEX temporal_entities_dataset ON temporal_entities (dataset);

-- statement-level, over the rows written, so that a batch of thousands of entities costs one join
CREATE FUNCTION urbantwin_entity_dataset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE temporal_entities t SET dataset = w.dataset FROM written w
     WHERE t.id = w.id AND t.dataset IS DISTINCT FROM w.dataset;
    RETURN NULL;
END
$$;
CREATE TRIGGER entities_dataset_created AFTER INSERT ON entities
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_entity_dataset();
CREATE TRIGGER entities_dataset_moved AFTER UPDATE ON entities
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_entity_dataset();

CREATE FUNCTION urbantwin_history_dataset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE temporal_entities t SET dataset = e.dataset FROM started s JOIN entities e ON e.id = s.id
     WHERE t.id = s.id AND t.dataset IS DISTINCT FROM e.dataset;
    RETURN NULL;
END
$$;
CREATE TRIGGER temporal_entities_dataset_started AFTER INSERT ON temporal_entities
    REFERENCING NEW TABLE AS started FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_history_dataset();

-- accounts (roles and groups as JSON arrays), their API keys and sessions (tokens only as SHA-256)
CREATE TABLE accounts (
    id text COLLATE "C" PRIMARY KEY,
    display_name text,
    email text,
    password_hash text,
    roles text NOT NULL,
    member_groups text NOT NULL,
    organisation text,
    disabled boolean NOT NULL DEFAULT false,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL
);
CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name text NOT NULL,
    hash text NOT NULL,
    scopes text NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint,
    revoked_ms bigint,
    last_used_ms bigint
);
CREATE INDEX api_keys_account ON api_keys (account, created_ms);
CREATE TABLE sessions (
    hash text COLLATE "C" PRIMARY KEY,
    account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    last_seen_ms bigint NOT NULL,
    user_agent text
);
CREATE INDEX sessions_account ON sessions (account);
CREATE INDEX sessions_expires ON sessions (expires_ms);

-- the usage log of reads of non-public data
CREATE TABLE usage_log (
    id bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    dataset text COLLATE "C" NOT NULL,
    principal text COLLATE "C" NOT NULL,
    operation text COLLATE "C" NOT NULL,
    entities bigint NOT NULL,
    purpose text,
    detail text
);
CREATE INDEX usage_log_dataset ON usage_log (dataset, id);
CREATE INDEX usage_log_principal ON usage_log (principal, id);

-- the hash-chained audit log, and its head: the last seq and hash appended. An append locks the head row
-- (SELECT .. FOR UPDATE) until it commits, so appends of every node are serialized and the chain never forks.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    at_ms bigint NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE TABLE audit_head (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64));

-- append-only: UPDATE, DELETE and TRUNCATE of the log are refused. A superuser (or the tables' owner) can still
-- disable or drop these triggers and rewrite the log; verify_audit then reveals the first altered or missing record.
CREATE FUNCTION urbantwin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% on % refused)', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION urbantwin_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_audit_append_only();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION urbantwin_audit_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION urbantwin_audit_append_only();
