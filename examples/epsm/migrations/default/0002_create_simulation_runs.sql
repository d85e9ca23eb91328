-- Runs live in the default database; their results live in epsm_results.
CREATE TABLE scenarios (
    id   bigserial PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE simulation_runs (
    id          uuid PRIMARY KEY,
    user_id     bigint REFERENCES users,
    scenario_id bigint REFERENCES scenarios,
    status      text NOT NULL DEFAULT 'queued',
    created_at  timestamptz NOT NULL DEFAULT now()
);
