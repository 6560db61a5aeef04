-- Retention and downsampling of temporal data: the policies (shared by every node on the database), the last run's
-- report, and the UTC-aligned buckets raw instances were folded into: count, sum, sum of squares, min and max of
-- the numeric values (dataset '' = no datasetId; period: ISO 8601, e.g. PT1H, P1D, P1M).
CREATE TABLE retention_policies (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL
);
CREATE TABLE retention_status (
    id int PRIMARY KEY CHECK (id = 1),
    doc text NOT NULL
);
CREATE TABLE temporal_aggregates (
    entity text COLLATE "C" NOT NULL,
    attr text COLLATE "C" NOT NULL,
    dataset text COLLATE "C" NOT NULL,
    period text NOT NULL,
    start_ms bigint NOT NULL,
    end_ms bigint NOT NULL,
    count bigint NOT NULL,
    sum double precision NOT NULL,
    sumsq double precision NOT NULL,
    vmin double precision NOT NULL,
    vmax double precision NOT NULL,
    PRIMARY KEY (entity, attr, dataset, period, start_ms)
);
CREATE INDEX temporal_aggregates_time ON temporal_aggregates (entity, attr, start_ms);
