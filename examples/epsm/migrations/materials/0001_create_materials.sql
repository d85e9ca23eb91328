CREATE TABLE materials (
    id                   bigserial PRIMARY KEY,
    name                 text NOT NULL UNIQUE,
    conductivity_w_mk    numeric NOT NULL,
    density_kg_m3        numeric NOT NULL,
    specific_heat_j_kgk  numeric NOT NULL,
    gwp_kgco2e_per_m3    numeric
);
