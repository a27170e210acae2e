package main

// The revisions table, as the official Atlas CLI (v0.13.1) keeps it: table
// atlas_schema_revisions in schema atlas_schema_revisions (or --revisions-schema),
// created by ent from cmd/atlas/internal/migrate/ent/schema/revision.go. Column layout
// and value conventions follow that schema and ent's PostgreSQL type mapping:
//
//	version          varchar  PK             file version
//	description      varchar                 file description
//	type             bigint   default 2      migrate.RevisionType bit flags
//	applied          bigint   default 0      statements applied
//	total            bigint   default 0      statements in the file
//	executed_at      timestamptz             start of execution
//	execution_time   bigint                  time.Duration in nanoseconds
//	error            text     NULL           '' when none (ent writes the empty string)
//	error_stmt       text     NULL           '' when none
//	hash             varchar                 file hash from atlas.sum
//	partial_hashes   jsonb    NULL           JSON array of statement hashes, or JSON null
//	operator_version varchar                 tool that wrote the row
//
// The row with version ".atlas_cloud_identifier" belongs to Atlas Cloud and is never
// read, written or deleted as a revision.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

const (
	revisionsTable         = "atlas_schema_revisions"
	defaultRevisionsSchema = "atlas_schema_revisions"
	cloudIdentifierVersion = ".atlas_cloud_identifier"
)

// Revisions implements migrate.RevisionReadWriter on a database/sql connection (or transaction).
type Revisions struct {
	db     schema.ExecQuerier
	schema string
}

var _ migrate.RevisionReadWriter = (*Revisions)(nil)

// NewRevisions returns a RevisionReadWriter for the table in the given schema.
func NewRevisions(db schema.ExecQuerier, schemaName string) *Revisions {
	if schemaName == "" {
		schemaName = defaultRevisionsSchema
	}
	return &Revisions{db: db, schema: schemaName}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (r *Revisions) table() string { return quoteIdent(r.schema) + "." + quoteIdent(revisionsTable) }

// createStmts create the schema and the table if missing, with the official layout.
func (r *Revisions) createStmts() []string {
	return []string{
		"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(r.schema),
		"CREATE TABLE IF NOT EXISTS " + r.table() + ` (
  "version" character varying NOT NULL,
  "description" character varying NOT NULL,
  "type" bigint NOT NULL DEFAULT 2,
  "applied" bigint NOT NULL DEFAULT 0,
  "total" bigint NOT NULL DEFAULT 0,
  "executed_at" timestamptz NOT NULL,
  "execution_time" bigint NOT NULL,
  "error" text NULL,
  "error_stmt" text NULL,
  "hash" character varying NOT NULL,
  "partial_hashes" jsonb NULL,
  "operator_version" character varying NOT NULL,
  PRIMARY KEY ("version")
)`,
	}
}

// Migrate creates the revisions schema and table when they do not exist.
func (r *Revisions) Migrate(ctx context.Context) error {
	for _, s := range r.createStmts() {
		if _, err := r.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("creating revisions table %s: %w", r.table(), err)
		}
	}
	return nil
}

// Exists reports whether the revisions table exists.
func (r *Revisions) Exists(ctx context.Context) (bool, error) {
	rows, err := r.db.QueryContext(ctx,
		`SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2`, r.schema, revisionsTable)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	var n int
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return false, err
		}
	}
	return n > 0, rows.Err()
}

// Ident implements migrate.RevisionReadWriter.
func (r *Revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: revisionsTable, Schema: r.schema}
}

const revisionColumns = `"version", "description", "type", "applied", "total", "executed_at", "execution_time", "error", "error_stmt", "hash", "partial_hashes", "operator_version"`

func (r *Revisions) query(ctx context.Context, where, order string, args ...any) ([]*migrate.Revision, error) {
	q := "SELECT " + revisionColumns + " FROM " + r.table() + " WHERE " + where + order
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading revisions: %w", err)
	}
	defer rows.Close()
	var revs []*migrate.Revision
	for rows.Next() {
		var (
			rev             migrate.Revision
			typ, applied    int64
			total, execTime int64
			errText, errSt  sql.NullString
			partial         []byte
		)
		if err := rows.Scan(&rev.Version, &rev.Description, &typ, &applied, &total, &rev.ExecutedAt,
			&execTime, &errText, &errSt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
			return nil, fmt.Errorf("scanning revision: %w", err)
		}
		rev.Type = migrate.RevisionType(typ)
		rev.Applied, rev.Total = int(applied), int(total)
		rev.ExecutionTime = time.Duration(execTime)
		rev.Error, rev.ErrorStmt = errText.String, errSt.String
		if len(partial) > 0 {
			if err := json.Unmarshal(partial, &rev.PartialHashes); err != nil {
				return nil, fmt.Errorf("revision %s: decoding partial_hashes: %w", rev.Version, err)
			}
		}
		revs = append(revs, &rev)
	}
	return revs, rows.Err()
}

// ReadRevisions implements migrate.RevisionReadWriter: all revisions ordered by version.
func (r *Revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	return r.query(ctx, `"version" <> $1`, ` ORDER BY "version"`, cloudIdentifierVersion)
}

// ReadRevision implements migrate.RevisionReadWriter.
func (r *Revisions) ReadRevision(ctx context.Context, v string) (*migrate.Revision, error) {
	if v == cloudIdentifierVersion {
		return nil, errors.New("cannot read revision-table identifier as revision")
	}
	revs, err := r.query(ctx, `"version" = $1`, "", v)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, migrate.ErrRevisionNotExist
	}
	return revs[0], nil
}

// CurrentRevision returns the revision with the highest version.
func (r *Revisions) CurrentRevision(ctx context.Context) (*migrate.Revision, error) {
	revs, err := r.query(ctx, `"version" <> $1`, ` ORDER BY "version" DESC LIMIT 1`, cloudIdentifierVersion)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, migrate.ErrRevisionNotExist
	}
	return revs[0], nil
}

// WriteRevision implements migrate.RevisionReadWriter: an upsert on version. Like the
// official CLI (ent's UpdateNewValues), the immutable description and executed_at are
// kept on conflict.
func (r *Revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	if rev.Version == cloudIdentifierVersion {
		return errors.New("writing the revision-table identifier is not allowed")
	}
	partial, err := json.Marshal(rev.PartialHashes)
	if err != nil {
		return err
	}
	q := "INSERT INTO " + r.table() + " (" + revisionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT ("version") DO UPDATE SET "type" = EXCLUDED."type", "applied" = EXCLUDED."applied", "total" = EXCLUDED."total",
"execution_time" = EXCLUDED."execution_time", "error" = EXCLUDED."error", "error_stmt" = EXCLUDED."error_stmt",
"hash" = EXCLUDED."hash", "partial_hashes" = EXCLUDED."partial_hashes", "operator_version" = EXCLUDED."operator_version"`
	_, err = r.db.ExecContext(ctx, q,
		rev.Version, rev.Description, int64(rev.Type), int64(rev.Applied), int64(rev.Total), rev.ExecutedAt,
		int64(rev.ExecutionTime), rev.Error, rev.ErrorStmt, rev.Hash, string(partial), rev.OperatorVersion)
	if err != nil {
		return fmt.Errorf("writing revision %s: %w", rev.Version, err)
	}
	return nil
}

// DeleteRevision implements migrate.RevisionReadWriter.
func (r *Revisions) DeleteRevision(ctx context.Context, v string) error {
	if v == cloudIdentifierVersion {
		return errors.New("deleting the revision-table identifier is not allowed")
	}
	_, err := r.db.ExecContext(ctx, "DELETE FROM "+r.table()+` WHERE "version" = $1`, v)
	return err
}

// aheadRevisions returns the applied revisions that have no file in the directory: the
// database was migrated from another branch or a newer checkout. The engine ignores
// them when it computes pending files, so without a note `migrate apply` would only say
// "No migration files to execute".
func aheadRevisions(files []migrate.File, revs []*migrate.Revision) []*migrate.Revision {
	have := make(map[string]bool, len(files))
	for _, f := range files {
		have[f.Version()] = true
	}
	var ahead []*migrate.Revision
	for _, r := range revs {
		if !have[r.Version] {
			ahead = append(ahead, r)
		}
	}
	return ahead
}

// aheadNote tells the user that the database has revisions the directory lacks, or is
// empty (issue 7 item 9; the official CLI v0.13.1 says nothing in this case).
func aheadNote(dir migrate.Dir, dirURL string, revs []*migrate.Revision) (string, error) {
	if len(revs) == 0 {
		return "", nil
	}
	files, err := dir.Files()
	if err != nil {
		return "", err
	}
	ahead := aheadRevisions(files, revs)
	if len(ahead) == 0 {
		return "", nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The database is ahead of the migration directory: %d applied revision(s) have no file in %s:\n", len(ahead), dirURL)
	for _, r := range ahead {
		fmt.Fprintf(&b, "  -- %s", r.Version)
		if r.Description != "" {
			fmt.Fprintf(&b, " (%s)", r.Description)
		}
		b.WriteString("\n")
	}
	b.WriteString("They were applied from another branch or a newer checkout; this directory cannot undo them.\n")
	return b.String(), nil
}
