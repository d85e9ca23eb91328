CREATE TABLE zone_results (
    result_id bigint NOT NULL REFERENCES simulation_results ON DELETE CASCADE,
    zone      text NOT NULL,
    area_m2   numeric,
    PRIMARY KEY (result_id, zone)
);
