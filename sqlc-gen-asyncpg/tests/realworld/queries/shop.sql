-- name: CreateProduct :one
INSERT INTO products (sku, name, price, stock, category_path, embedding, attributes)
VALUES (@sku, @name, @price, @stock, @category_path, sqlc.narg(embedding), @attributes)
RETURNING *;

-- name: GetProductBySku :one
SELECT * FROM products WHERE sku = $1;

-- name: ListActiveProducts :many
SELECT id, sku, name, price FROM products WHERE active ORDER BY name;

-- name: ProductsInCategory :many
SELECT id, name, category_path FROM products WHERE category_path <@ @category::ltree ORDER BY category_path, name;

-- name: NearestProducts :many
SELECT id, name, embedding <-> @target::vector AS distance FROM products
WHERE embedding IS NOT NULL ORDER BY distance LIMIT @max_results;

-- name: ProductEmbedding :one
SELECT embedding FROM products WHERE id = $1;

-- name: AdjustStock :one
UPDATE products SET stock = stock + @delta WHERE id = @id AND stock + @delta >= 0 RETURNING stock;

-- name: ProductsLowOnStock :many
SELECT sku, stock FROM products WHERE stock < @threshold AND active ORDER BY stock, sku;

-- name: ProductPriceStats :one
SELECT min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS median_price
FROM products WHERE active;

-- name: ProductsWithAttribute :many
SELECT id, attributes ->> @name::text AS value FROM products WHERE attributes ? @name::text;

-- name: SetProductAttribute :exec
UPDATE products SET attributes = jsonb_set(attributes, ARRAY[@name::text], @value::jsonb) WHERE id = @id;

-- name: DeactivateProducts :execrows
UPDATE products SET active = false WHERE sku = ANY(@skus::text[]);

-- name: CreateCustomer :one
INSERT INTO customers (email, name, country) VALUES ($1, $2, $3)
ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name
RETURNING *;

-- name: CustomersByCountry :many
SELECT country, count(*) AS customers FROM customers GROUP BY country ORDER BY customers DESC, country;

-- name: CreateOrder :one
INSERT INTO orders (customer_id, shipping_address, note) VALUES (@customer_id, sqlc.narg(shipping_address), sqlc.narg(note))
RETURNING id, status, placed_at;

-- name: AddOrderItem :exec
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT @order_id, p.id, @quantity, p.price FROM products p WHERE p.id = @product_id
ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = order_items.quantity + EXCLUDED.quantity;

-- name: RecomputeOrderTotal :one
UPDATE orders SET total = (
    SELECT coalesce(sum(quantity * unit_price), 0) FROM order_items WHERE order_id = orders.id
) WHERE id = $1
RETURNING total;

-- name: GetOrder :one
SELECT o.id, o.status, o.total, o.placed_at, c.name AS customer, c.email
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.id = $1;

-- name: OrderLines :many
SELECT p.sku, p.name, i.quantity, i.unit_price, i.quantity * i.unit_price AS line_total
FROM order_items i JOIN products p ON p.id = i.product_id
WHERE i.order_id = $1
ORDER BY p.sku;

-- name: SetOrderStatus :one
UPDATE orders SET status = @status WHERE id = @id AND status = @expected RETURNING status;

-- name: OrdersInStatuses :many
SELECT id, status, total FROM orders WHERE status IN (sqlc.slice(statuses)) ORDER BY id;

-- name: CustomerOrderHistory :many
SELECT id, status, total, placed_at,
       sum(total) OVER (ORDER BY placed_at, id) AS running_total
FROM orders WHERE customer_id = $1 ORDER BY placed_at, id;

-- name: TopCustomers :many
WITH spend AS (
    SELECT customer_id, sum(total) AS spent, count(*) AS orders
    FROM orders WHERE status IN ('paid', 'shipped', 'delivered')
    GROUP BY customer_id
)
SELECT c.id, c.name, s.spent, s.orders
FROM spend s JOIN customers c ON c.id = s.customer_id
ORDER BY s.spent DESC
LIMIT @max_results;

-- name: DailyRevenue :many
SELECT date_trunc('day', placed_at)::date AS day, sum(total) AS revenue, count(*) AS orders
FROM orders WHERE placed_at >= @since AND status <> 'cancelled'
GROUP BY 1 ORDER BY 1;

-- name: CapturePayment :one
INSERT INTO payments (order_id, amount, provider, captured_at, raw)
VALUES (@order_id, @amount, @provider, now(), @raw)
RETURNING id;

-- name: PaymentsForOrder :many
SELECT id, amount, provider, captured_at FROM payments WHERE order_id = $1 ORDER BY captured_at NULLS LAST;

-- name: UnpaidOrders :many
SELECT o.id, o.total, coalesce(sum(p.amount), 0)::numeric AS paid
FROM orders o LEFT JOIN payments p ON p.order_id = o.id
GROUP BY o.id, o.total
HAVING coalesce(sum(p.amount), 0) < o.total
ORDER BY o.id;

-- name: AddReview :one
INSERT INTO reviews (product_id, customer_id, rating, body) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: ProductRatings :many
SELECT rating, count(*) AS reviews FROM reviews WHERE product_id = $1 GROUP BY rating ORDER BY rating;

-- name: ReviewsWithRating :many
SELECT id, rating, body FROM reviews WHERE rating = ANY(@ratings::rating[]) ORDER BY id;

-- name: CopyOrderItems :copyfrom
INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4);

-- name: BatchProductStock :batchone
SELECT stock FROM products WHERE id = $1;

-- name: OrdersFullJoinPayments :many
SELECT o.id AS order_id, p.id AS payment_id, p.amount
FROM orders o FULL JOIN payments p ON p.order_id = o.id
ORDER BY o.id, p.id;
