CREATE TABLE hourly_timeseries (
    result_id bigint NOT NULL REFERENCES simulation_results ON DELETE CASCADE,
    hour      smallint NOT NULL CHECK (hour BETWEEN 0 AND 8783),
    value_kwh numeric NOT NULL,
    PRIMARY KEY (result_id, hour)
);
