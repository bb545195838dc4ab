-- The application's table: every type a dataset column can take.
CREATE TABLE people (
    id         bigint PRIMARY KEY,
    name       text,
    balance    numeric(38,8),
    score      numeric,
    device_id  numeric(20,0),
    active     boolean,
    born       date,
    updated_at timestamptz,
    attrs      jsonb,
    bio        text
);
