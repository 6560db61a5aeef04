-- Participation (see the `participation` module): records of consultations (JSON documents of a kind) and marks
-- (votes, supports, flags, follows, survey responses: one per kind, target and author). Times in microseconds since
-- the epoch (as the SQLite backend keeps them), texts in the "C" collation so that they sort as in SQLite.
CREATE TABLE participation_records (
    kind text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    consultation text COLLATE "C",
    parent text COLLATE "C",
    author text COLLATE "C",
    created_us bigint NOT NULL,
    modified_us bigint NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX participation_records_consultation ON participation_records (kind, consultation, created_us, id);
CREATE INDEX participation_records_parent ON participation_records (kind, parent, created_us, id);
CREATE INDEX participation_records_author ON participation_records (kind, author);
CREATE INDEX participation_records_of_consultation ON participation_records (consultation);

-- a mark's limit per (kind, scope, author) is checked under pg_advisory_xact_lock(PART_LOCK_SPACE,
-- hashtext(kind, scope, author)), taken before counting, so that two transactions never both pass it
CREATE TABLE participation_marks (
    kind text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    author text COLLATE "C" NOT NULL,
    scope text COLLATE "C" NOT NULL,
    value jsonb NOT NULL,
    at_us bigint NOT NULL,
    PRIMARY KEY (kind, target, author)
);
CREATE INDEX participation_marks_scope ON participation_marks (kind, scope, author);
CREATE INDEX participation_marks_author ON participation_marks (author);
CREATE INDEX participation_marks_of_scope ON participation_marks (scope);
