-- run_id points at simulation_runs in the default database: no foreign key across databases.
CREATE TABLE simulation_results (
    id            bigserial PRIMARY KEY,
    run_id        uuid NOT NULL,
    user_id       bigint,
    total_energy_kwh numeric,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX simulation_results_run_id ON simulation_results (run_id);
