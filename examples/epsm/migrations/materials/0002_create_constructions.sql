CREATE TABLE constructions (
    id   bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('wall', 'roof', 'floor', 'window'))
);

CREATE TABLE construction_layers (
    construction_id bigint NOT NULL REFERENCES constructions ON DELETE CASCADE,
    position        int NOT NULL,
    material_id     bigint NOT NULL REFERENCES materials,
    thickness_m     numeric NOT NULL,
    PRIMARY KEY (construction_id, position)
);

CREATE TABLE construction_sets (
    id   bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE
);
