-- name: CreateAuthor :one
INSERT INTO authors (name, bio, mood, tags, data)
VALUES (@name, sqlc.narg(bio), @mood, @tags, @data)
RETURNING *;

-- name: CreateAuthorId :execlastid
INSERT INTO authors (name) VALUES ($1) RETURNING id;

-- name: GetAuthor :one
SELECT * FROM authors WHERE id = $1;

-- name: ListAuthorsByIds :many
SELECT * FROM authors WHERE id = ANY(@ids::bigint[]) ORDER BY id;

-- name: ListAuthorNames :many
SELECT id, name FROM authors WHERE name LIKE @pattern ORDER BY id;

-- name: RenameAuthor :exec
UPDATE authors SET name = @name WHERE id = @id;

-- name: DeleteAuthorsNamed :execrows
DELETE FROM authors WHERE name = $1;

-- name: TouchAuthors :execresult
UPDATE authors SET bio = bio WHERE name = $1;

-- name: CopyAuthors :copyfrom
INSERT INTO authors (name, bio, mood, tags, data) VALUES ($1, $2, $3, $4, $5);

-- name: BatchCreateAuthors :batchexec
INSERT INTO authors (name, mood) VALUES ($1, $2);

-- name: BatchGetAuthor :batchone
SELECT * FROM authors WHERE id = $1;

-- name: BatchAuthorNames :batchmany
SELECT name FROM authors WHERE name LIKE $1 ORDER BY id;

-- name: CreateBook :one
INSERT INTO books (author_id, title, price) VALUES ($1, $2, $3) RETURNING *;

-- name: ListBooksWithAuthors :many
SELECT sqlc.embed(books), sqlc.embed(authors)
FROM books JOIN authors ON authors.id = books.author_id
WHERE authors.id = @author_id
ORDER BY books.id;

-- name: ListAuthorsLeftJoinBooks :many
SELECT authors.id, authors.name, books.title, books.price
FROM authors LEFT JOIN books ON books.author_id = authors.id
WHERE authors.id = ANY(@ids::bigint[])
ORDER BY authors.id, books.id;

-- name: ListBooksRightJoinAuthors :many
SELECT books.title, authors.name
FROM books RIGHT JOIN authors ON authors.id = books.author_id
WHERE authors.id = @author_id;

-- name: ListBothIds :many
SELECT authors.id, books.id FROM authors JOIN books ON books.author_id = authors.id
WHERE authors.id = $1;

-- name: CreateKeyword :one
INSERT INTO keywords (id, "from", "class", "json", "schema") VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: ListAuthorNamesAndMoodsForTheLayoutOfLongLines :many
-- Long names make the generator split lines the way ruff format does.
SELECT name, mood FROM authors WHERE id = ANY(@ids_of_the_authors_to_read::bigint[]) ORDER BY id;

-- name: BatchGetAuthorNameAndMoodForTheLayoutOfLongLines :batchone
SELECT name, mood FROM authors WHERE id = $1;

-- name: ListAuthorMoodArraysForTheLayoutOfLongLinesOfScalars :many
SELECT ARRAY[mood, mood]::mood[] AS moods FROM authors WHERE id = ANY(@ids_of_the_authors_to_read::bigint[]);
