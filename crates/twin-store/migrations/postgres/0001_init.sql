-- urbantwin's PostgreSQL schema, version 1. Times are milliseconds since the Unix epoch (bigint) and documents are
-- JSON text, exactly as the SQLite backend keeps them, so that both answer alike.

-- entities stored whole, next to the indexes the query planner narrows by
-- rid: creation order, which breaks ties of modified_ms as SQLite's row id does
CREATE TABLE entities (
    id text COLLATE "C" PRIMARY KEY,
    rid bigserial NOT NULL,
    doc text NOT NULL,
    dataset text,
    modified_ms bigint NOT NULL
);
CREATE INDEX entities_modified ON entities (modified_ms, rid);

CREATE TABLE entity_types (
    type text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    PRIMARY KEY (type, id)
);
CREATE INDEX entity_types_id ON entity_types (id);

-- one row per GeoProperty instance with a box (lon/lat), in PostgreSQL's built-in box type under a GiST index; a
-- PostGIS geometry column can be added next to it later without changing how rows are keyed
CREATE TABLE entity_geo (
    id text COLLATE "C" NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    attr text COLLATE "C" NOT NULL,
    bbox box NOT NULL
);
CREATE INDEX entity_geo_bbox ON entity_geo USING gist (bbox);
CREATE INDEX entity_geo_id ON entity_geo (id);

-- one row per (entity, attribute, scalar value) for q: numbers (and booleans as 0/1) in num, strings (and booleans
-- as text) in txt; flag 1 = no scalar value, 2 = a value the index cannot represent (always left to the evaluator)
CREATE TABLE attr_values (
    id text COLLATE "C" NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    attr text COLLATE "C" NOT NULL,
    num double precision,
    txt text,
    flag smallint NOT NULL DEFAULT 0,
    kind text NOT NULL
);
CREATE INDEX attr_values_id ON attr_values (id, attr);
CREATE INDEX attr_values_num ON attr_values (attr, num);
CREATE INDEX attr_values_txt ON attr_values (attr, txt);

CREATE TABLE temporal_entities (
    id text COLLATE "C" PRIMARY KEY,
    types text NOT NULL,
    scopes text NOT NULL
);
-- the row id is the instance id (urn:ngsi-ld:attribute:instance:IID)
CREATE TABLE temporal (
    iid bigserial PRIMARY KEY,
    entity text COLLATE "C" NOT NULL,
    attr text COLLATE "C" NOT NULL,
    dataset_id text,
    ts bigint NOT NULL,
    sys_ms bigint NOT NULL,
    num double precision,
    doc text NOT NULL
);
CREATE INDEX temporal_ts ON temporal (entity, attr, ts, num);
CREATE INDEX temporal_sys ON temporal (entity, attr, sys_ms);

CREATE TABLE contexts (
    id text COLLATE "C" PRIMARY KEY,
    url text NOT NULL UNIQUE,
    doc text NOT NULL
);
CREATE TABLE datasets (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL
);
CREATE TABLE subscriptions (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL,
    status text NOT NULL
);

-- gapless sequence numbers of the change journal and of map changes, taken at the end of a transaction while it
-- holds the journal lock, so that seq order is commit order (a rollback gives its numbers back)
CREATE TABLE counters (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('changes', 0), ('map_changes', 0);

CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    doc text NOT NULL
);
-- the outbox; a node delivering a row claims it (claimed_by, its store's id) until claimed_until: other nodes leave
-- it alone until then (so a dead node's claims run out), the claiming node sees it again as SQLite would
CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    subscription text NOT NULL,
    payload text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_ms bigint NOT NULL,
    claimed_by text,
    claimed_until bigint NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_next ON deliveries (next_ms);
CREATE INDEX deliveries_subscription ON deliveries (subscription);

CREATE TABLE map_changes (
    seq bigint PRIMARY KEY,
    type text COLLATE "C" NOT NULL,
    min_x double precision NOT NULL,
    min_y double precision NOT NULL,
    max_x double precision NOT NULL,
    max_y double precision NOT NULL
);

CREATE TABLE scenarios (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL,
    created_ms bigint NOT NULL,
    modified_ms bigint NOT NULL
);
CREATE TABLE scenario_runs (
    id text COLLATE "C" PRIMARY KEY,
    scenario text NOT NULL,
    status text NOT NULL,
    progress double precision NOT NULL,
    message text,
    created_ms bigint NOT NULL,
    started_ms bigint,
    finished_ms bigint,
    request text NOT NULL,
    summary text NOT NULL,
    links text
);
CREATE INDEX scenario_runs_scenario ON scenario_runs (scenario, created_ms);

CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    received_ms bigint NOT NULL,
    source text NOT NULL,
    topic text NOT NULL,
    payload bytea NOT NULL,
    reason text NOT NULL
);
CREATE INDEX dead_letters_topic ON dead_letters (topic, id);
