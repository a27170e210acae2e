-- name: InsertEverything :one
-- Insert a row with every type and return it.
INSERT INTO everything (
    c_smallint, c_integer, c_bigint, c_numeric, c_real, c_double, c_boolean, c_text,
    c_varchar, c_char, c_citext, c_name, c_uuid, c_date, c_time, c_timetz, c_timestamp,
    c_timestamptz, c_interval, c_json, c_jsonb, c_bytea, c_inet, c_cidr, c_macaddr, c_money,
    c_bit, c_varbit, c_oid, c_mood, c_text_array, c_int_grid, c_mood_array, c_uuid_array,
    c_point, n_integer, n_text, n_jsonb, n_mood, n_timestamptz, n_int_array
) VALUES (
    @c_smallint, @c_integer, @c_bigint, @c_numeric, @c_real, @c_double, @c_boolean, @c_text,
    @c_varchar, @c_char, @c_citext, @c_name, @c_uuid, @c_date, @c_time, @c_timetz,
    @c_timestamp, @c_timestamptz, @c_interval, @c_json, @c_jsonb, @c_bytea, @c_inet, @c_cidr,
    @c_macaddr, @c_money, @c_bit, @c_varbit, @c_oid, @c_mood, @c_text_array, @c_int_grid,
    @c_mood_array, @c_uuid_array, @c_point, sqlc.narg(n_integer), sqlc.narg(n_text),
    sqlc.narg(n_jsonb), sqlc.narg(n_mood), sqlc.narg(n_timestamptz), sqlc.narg(n_int_array)
)
RETURNING *;

-- name: GetEverything :one
SELECT * FROM everything WHERE id = $1;

-- name: ListEverything :many
SELECT * FROM everything ORDER BY id;

-- name: GetMood :one
SELECT c_mood FROM everything WHERE id = $1;

-- name: GetNullableMood :one
SELECT n_mood FROM everything WHERE id = $1;

-- name: GetMoodArray :one
SELECT c_mood_array FROM everything WHERE id = $1;

-- name: ListJsonb :many
SELECT c_jsonb FROM everything ORDER BY id;

-- name: CountEverything :one
SELECT count(*) FROM everything;

-- name: EchoTypes :one
-- Casts of parameters come back as the same Python types.
SELECT @a::int8[] AS ints, @b::timestamptz AS at, @c::jsonb AS doc, @d::mood AS feeling;
