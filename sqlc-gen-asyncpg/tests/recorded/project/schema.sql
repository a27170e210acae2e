CREATE TYPE user_status AS ENUM ('active', 'disabled');

CREATE TABLE users (
    id     bigserial PRIMARY KEY,
    email  text NOT NULL,
    status user_status NOT NULL,
    tags   text[] NOT NULL
);
