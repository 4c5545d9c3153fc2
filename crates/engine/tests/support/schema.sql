-- Orders service schema
-- Owner: payments team

CREATE TABLE customers (
    id          BIGSERIAL PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    country     CHAR(2) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX customers_country_idx ON customers (country);

-- An order belongs to one customer; lines hold the products.
CREATE TABLE orders (
    id           BIGSERIAL PRIMARY KEY,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'cancelled', 'returned')),
    total_cents  BIGINT NOT NULL,
    placed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_status_idx ON orders (status) WHERE status <> 'shipped';

CREATE TABLE order_lines (
    order_id     BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id   BIGINT NOT NULL REFERENCES products (id),
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    unit_cents   BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE products (
    id          BIGSERIAL PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    price_cents BIGINT NOT NULL
);

CREATE VIEW revenue_by_country AS
SELECT c.country, sum(o.total_cents) AS cents
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.status = 'shipped'
GROUP BY c.country;
