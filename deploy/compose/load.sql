-- One round of changes to the shop (docker-compose.yml, profile demo): a
-- new customer, a new order, an order moving on, a customer's notes
-- changed and, now and then, a shipped order deleted. Every value fits the
-- customer and order models of examples/postgresql_to_postgresql.
BEGIN;
INSERT INTO customers (full_name, email)
SELECT 'Customer ' || n, 'customer' || n || '@example.com'
FROM (SELECT floor(random() * 1000000)::int AS n) AS r;

INSERT INTO orders (customer_id, total, status)
SELECT id, round((random() * 200)::numeric, 2), 'new'
FROM customers ORDER BY random() LIMIT 1;

UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' ELSE 'shipped' END
WHERE id = (SELECT id FROM orders WHERE status IN ('new', 'paid') ORDER BY random() LIMIT 1);

UPDATE customers SET notes = 'seen at ' || now()::text
WHERE id = (SELECT id FROM customers ORDER BY random() LIMIT 1);

DELETE FROM orders
WHERE random() < 0.2
  AND id = (SELECT id FROM orders WHERE status = 'shipped' ORDER BY random() LIMIT 1);
COMMIT;
