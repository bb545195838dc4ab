-- The shop database (MySQL 8 or MariaDB 10.5 and later, with a row-based
-- binary log: see docs/operations.md). internal_score is never read: no
-- mixer names it. DATETIME holds UTC.
CREATE TABLE IF NOT EXISTS customers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    full_name VARCHAR(200) NOT NULL,
    email VARCHAR(200),
    notes LONGTEXT,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    internal_score INT
) CHARACTER SET utf8mb4;
CREATE TABLE IF NOT EXISTS orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT,
    total DECIMAL(12, 2),
    status VARCHAR(20),
    placed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) CHARACTER SET utf8mb4;
-- No ON DELETE SET NULL / CASCADE here: MySQL and MariaDB apply foreign-key
-- actions inside the storage engine and leave them out of the binary log,
-- so no replica (Remix included) sees them. Set customer_id in the
-- application instead.
