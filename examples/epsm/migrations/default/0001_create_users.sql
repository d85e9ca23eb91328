CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_groups (
    user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    name    text NOT NULL,
    PRIMARY KEY (user_id, name)
);
