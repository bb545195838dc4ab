CREATE TABLE IF NOT EXISTS products (
    id bigserial PRIMARY KEY,
    stripe_id TEXT UNIQUE,
    product_name TEXT NOT NULL,
    internal_notes TEXT
);
CREATE TABLE IF NOT EXISTS prices (
    id bigserial PRIMARY KEY,
    stripe_id TEXT UNIQUE,
    product_stripe_id TEXT,
    unit_amount bigint,
    currency TEXT
);
