-- Runs become jobs that any node computes: a run is created queued; a node's worker claims it (FOR UPDATE SKIP
-- LOCKED), holds it until its lease runs out and renews the lease while computing; a run whose node died is requeued
-- (or failed after its attempts). Cancelling sets a flag the computing node reads at its heartbeat.
ALTER TABLE scenario_runs
    ADD COLUMN node text,
    ADD COLUMN lease_until_ms bigint,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- the queue and the expired leases are found without reading every finished run
CREATE INDEX scenario_runs_jobs ON scenario_runs (status, created_ms) WHERE status IN ('queued', 'running');

-- a run queued (created, or requeued) wakes the workers of every node listening on `urbantwin_jobs`
CREATE FUNCTION urbantwin_run_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('urbantwin_jobs', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER scenario_runs_queued AFTER INSERT OR UPDATE OF status ON scenario_runs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION urbantwin_run_queued();
