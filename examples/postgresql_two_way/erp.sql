-- The ERP's database, with its own names.
CREATE SCHEMA inventory;
CREATE TABLE inventory.items (
    sku_id     bigint PRIMARY KEY,
    label      text,
    list_price numeric(12, 2),
    sellable   boolean
);
