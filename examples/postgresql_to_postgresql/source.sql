-- The shop database. internal_score is never read: no mixer names it.
CREATE TABLE IF NOT EXISTS customers (
    id bigserial PRIMARY KEY,
    full_name text NOT NULL,
    email text,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    internal_score int
);
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    customer_id bigint REFERENCES customers (id) ON DELETE SET NULL,
    total numeric(12, 2),
    status text,
    placed_at timestamptz NOT NULL DEFAULT now()
);
