-- The shop's database. Two-way sync needs track_commit_timestamp = on on
-- the server (row versions are commit timestamps).
CREATE TABLE products (
    id     bigint PRIMARY KEY,
    title  text,
    price  numeric(12, 2),
    active boolean
);
