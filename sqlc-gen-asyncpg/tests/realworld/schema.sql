-- A realistic schema for the real-world corpus: a multi-tenant task tracker and a shop.
-- Applied as plain SQL to a fresh database by the tests.

CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TYPE member_role AS ENUM ('owner', 'admin', 'member', 'guest');
CREATE TYPE task_state AS ENUM ('todo', 'in_progress', 'blocked', 'done');
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
-- Labels that are not Python identifiers, and labels that normalise to the same name.
CREATE TYPE priority AS ENUM ('0', '1', '2', '3');
CREATE TYPE rating AS ENUM ('+1', '-1', '0');
CREATE TYPE http_method AS ENUM ('GET', 'get', 'POST', 'post', 'so-so', 'so_so');

CREATE TABLE organizations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       citext NOT NULL UNIQUE,
    name       text NOT NULL,
    plan       text NOT NULL DEFAULT 'free',
    settings   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email        citext NOT NULL,
    full_name    text NOT NULL,
    role         member_role NOT NULL DEFAULT 'member',
    is_active    boolean NOT NULL DEFAULT true,
    tags         text[] NOT NULL DEFAULT '{}',
    attrs        hstore,
    last_seen_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);

CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text,
    budget      numeric(12, 2),
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    parent_id   bigint REFERENCES tasks (id),
    path        ltree NOT NULL,
    title       text NOT NULL,
    body        text,
    state       task_state NOT NULL DEFAULT 'todo',
    priority    priority NOT NULL DEFAULT '2',
    assignee_id uuid REFERENCES users (id) ON DELETE SET NULL,
    due_on      date,
    estimate    interval,
    labels      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE comments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author_id  uuid NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at  timestamptz
);

CREATE TABLE task_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id  bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    actor_id uuid REFERENCES users (id),
    kind     text NOT NULL,
    payload  jsonb NOT NULL DEFAULT '{}',
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           text NOT NULL UNIQUE,
    name          text NOT NULL,
    price         numeric(10, 2) NOT NULL,
    stock         integer NOT NULL DEFAULT 0,
    category_path ltree NOT NULL,
    embedding     vector(3),
    attributes    jsonb NOT NULL DEFAULT '{}',
    active        boolean NOT NULL DEFAULT true
);

CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      citext NOT NULL UNIQUE,
    name       text NOT NULL,
    country    char(2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id      bigint NOT NULL REFERENCES customers (id),
    status           order_status NOT NULL DEFAULT 'pending',
    placed_at        timestamptz NOT NULL DEFAULT now(),
    total            numeric(12, 2) NOT NULL DEFAULT 0,
    shipping_address jsonb,
    note             text
);

CREATE TABLE order_items (
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE payments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id    bigint NOT NULL REFERENCES orders (id),
    amount      numeric(12, 2) NOT NULL,
    provider    text NOT NULL,
    captured_at timestamptz,
    raw         jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE reviews (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  bigint NOT NULL REFERENCES products (id),
    customer_id bigint NOT NULL REFERENCES customers (id),
    rating      rating NOT NULL,
    body        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     bigint NOT NULL REFERENCES organizations (id),
    name       text NOT NULL,
    key_hash   bytea NOT NULL,
    scopes     text[] NOT NULL,
    created_ip inet,
    expires_at timestamptz
);

CREATE TABLE page_views (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path        text NOT NULL,
    method      http_method NOT NULL DEFAULT 'GET',
    user_id     uuid,
    ip          inet,
    duration_ms integer NOT NULL,
    viewed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL,
    "type" text NOT NULL DEFAULT 'str'
);
