CREATE TABLE energy_use (
    result_id bigint NOT NULL REFERENCES simulation_results ON DELETE CASCADE,
    end_use   text NOT NULL,
    kwh       numeric NOT NULL,
    PRIMARY KEY (result_id, end_use)
);

ALTER TABLE simulation_results ADD COLUMN gwp_kgco2e numeric, ADD COLUMN cost_eur numeric;
