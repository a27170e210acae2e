-- The execution corpus: every type, command, macro and nullability case the plugin
-- supports. Applied as plain SQL to a fresh database by the tests.

CREATE EXTENSION IF NOT EXISTS citext;

CREATE TYPE mood AS ENUM ('happy', 'sad', 'so-so');

CREATE TABLE everything (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    c_smallint    smallint NOT NULL,
    c_integer     integer NOT NULL,
    c_bigint      bigint NOT NULL,
    c_serial      serial NOT NULL,
    c_numeric     numeric(12, 3) NOT NULL,
    c_real        real NOT NULL,
    c_double      double precision NOT NULL,
    c_boolean     boolean NOT NULL,
    c_text        text NOT NULL,
    c_varchar     varchar(20) NOT NULL,
    c_char        char(3) NOT NULL,
    c_citext      citext NOT NULL,
    c_name        name NOT NULL,
    c_uuid        uuid NOT NULL,
    c_date        date NOT NULL,
    c_time        time NOT NULL,
    c_timetz      timetz NOT NULL,
    c_timestamp   timestamp NOT NULL,
    c_timestamptz timestamptz NOT NULL,
    c_interval    interval NOT NULL,
    c_json        json NOT NULL,
    c_jsonb       jsonb NOT NULL,
    c_bytea       bytea NOT NULL,
    c_inet        inet NOT NULL,
    c_cidr        cidr NOT NULL,
    c_macaddr     macaddr NOT NULL,
    c_money       money NOT NULL,
    c_bit         bit(4) NOT NULL,
    c_varbit      varbit NOT NULL,
    c_oid         oid NOT NULL,
    c_xid8        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    c_mood        mood NOT NULL,
    c_text_array  text[] NOT NULL,
    c_int_grid    integer[][] NOT NULL,
    c_mood_array  mood[] NOT NULL,
    c_uuid_array  uuid[] NOT NULL,
    c_point       point NOT NULL,
    n_integer     integer,
    n_text        text,
    n_jsonb       jsonb,
    n_mood        mood,
    n_timestamptz timestamptz,
    n_int_array   integer[]
);

CREATE TABLE authors (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    bio        text,
    mood       mood NOT NULL DEFAULT 'happy',
    tags       text[] NOT NULL DEFAULT '{}',
    data       jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE books (
    id        serial PRIMARY KEY,
    author_id bigint REFERENCES authors (id) ON DELETE CASCADE,
    title     text NOT NULL,
    price     numeric(10, 2)
);

-- Column names that are Python keywords or BaseModel attributes.
CREATE TABLE keywords (
    id       integer PRIMARY KEY,
    "from"   text NOT NULL,
    "class"  integer,
    "json"   text,
    "schema" text
);
