-- The table prod-db syncs. Columns no mixer names are never read or written.
CREATE TABLE IF NOT EXISTS products (
    id bigserial PRIMARY KEY,
    stripe_id TEXT UNIQUE,
    product_name TEXT NOT NULL,
    active BOOLEAN DEFAULT TRUE,
    price int,
    created TIMESTAMPTZ,
    updated TIMESTAMPTZ,
    description TEXT,
    livemode BOOLEAN DEFAULT FALSE,
    statement_descriptor TEXT,
    unit_label TEXT,
    category TEXT,
    internal_notes TEXT
);
