-- The warehouse database. loaded_at is never written by Remix.
CREATE TABLE IF NOT EXISTS dim_customer (
    customer_key bigint PRIMARY KEY,
    name text,
    email_address text,
    profile_notes text,
    signed_up timestamptz,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS fact_order (
    order_key bigint PRIMARY KEY,
    customer_key bigint,
    amount numeric(12, 2),
    state text,
    ordered_at timestamptz
);
