package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// Integration tests need a PostgreSQL server (13–18). ATLAS_ENGINE_TEST_URL_BASE is the URL
// of a database the tests may connect to in order to CREATE/DROP their own scratch
// databases (named atlasengine_it_*), for example
//
//	ATLAS_ENGINE_TEST_URL_BASE='postgres://postgres:pass@127.0.0.1:5432/postgres?sslmode=disable'
const envURLBase = "ATLAS_ENGINE_TEST_URL_BASE"

const testSchema = `
CREATE TYPE user_status AS ENUM ('active', 'disabled');
CREATE TABLE users (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    email      text        NOT NULL,
    status     user_status NOT NULL DEFAULT 'active',
    note       text        NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_length CHECK (char_length(email) BETWEEN 3 AND 320)
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE TABLE events (
    id      bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    user_id uuid   NULL,
    payload jsonb  NOT NULL DEFAULT '{}',
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX events_user_idx ON events (user_id, id) WHERE user_id IS NOT NULL;
`

// testDBs creates n scratch databases and returns their URLs.
func testDBs(t *testing.T, n int) []string {
	t.Helper()
	base := os.Getenv(envURLBase)
	if base == "" {
		t.Skipf("integration test skipped: set %s to a PostgreSQL URL (e.g. postgres://postgres:pass@127.0.0.1:5432/postgres?sslmode=disable)", envURLBase)
	}
	return testDBsOn(t, base, n)
}

// testDBsOn creates n scratch databases on the server of the base URL.
func testDBsOn(t *testing.T, base string, n int) []string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("base URL: %v", err)
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var urls []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("atlasengine_it_%d_%d", rand.Int63n(1<<40), i)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("creating database: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		})
		du := *u
		du.Path = "/" + name
		urls = append(urls, du.String())
	}
	return urls
}

// run executes the CLI in-process with a bounded context.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

func TestIntegrationMigrateCycle(t *testing.T) {
	dbs := testDBs(t, 3)
	dev, target, fromSchema := dbs[0], dbs[1], dbs[2]
	work := t.TempDir()
	schemaFile := filepath.Join(work, "schema.sql")
	if err := os.WriteFile(schemaFile, []byte(testSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	dirURL := "file://" + filepath.Join(work, "migrations")
	toURL := "file://" + schemaFile

	// diff: first migration + atlas.sum.
	mustRun(t, "migrate", "diff", "init", "--dir", dirURL, "--to", toURL, "--dev-url", dev)
	dir, err := migrate.NewLocalDir(filepath.Join(work, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := dir.Files()
	if err != nil || len(files) != 1 || !strings.HasSuffix(files[0].Name(), "_init.sql") || len(files[0].Version()) != 14 {
		t.Fatalf("expected one <yyyymmddhhmmss>_init.sql file, got %v (%v)", files, err)
	}
	if err := migrate.Validate(dir); err != nil {
		t.Fatalf("atlas.sum: %v", err)
	}
	// Synced.
	if out := mustRun(t, "migrate", "diff", "--dir", dirURL, "--to", toURL, "--dev-url", dev); !strings.Contains(out, "no changes to be made") {
		t.Fatalf("expected synced, got %q", out)
	}
	// validate replays on dev.
	mustRun(t, "migrate", "validate", "--dir", dirURL, "--dev-url", dev)
	// status before/after apply.
	if out := mustRun(t, "migrate", "status", "--dir", dirURL, "--url", target); !strings.Contains(out, "PENDING") {
		t.Fatalf("status: %s", out)
	}
	if out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target); !strings.Contains(out, "1 migrations") {
		t.Fatalf("apply: %s", out)
	}
	out := mustRun(t, "migrate", "status", "--dir", dirURL, "--url", target)
	if !strings.Contains(out, "OK") || !strings.Contains(out, files[0].Version()) {
		t.Fatalf("status: %s", out)
	}
	if out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target); !strings.Contains(out, "No migration files to execute") {
		t.Fatalf("apply again: %s", out)
	}
	checkRevisionsTable(t, target, files[0])

	// The migrated database equals the schema file (revisions schema excluded).
	if out := mustRun(t, "schema", "diff", "--from", target, "--to", toURL, "--dev-url", dev, "--exclude", "atlas_schema_revisions"); !strings.Contains(out, "Schemas are synced") {
		t.Fatalf("schema diff: %s", out)
	}
	// Two databases: migrated vs loaded from the SQL file directly.
	execSQL(t, fromSchema, testSchema)
	if out := mustRun(t, "schema", "diff", "--from", target, "--to", fromSchema, "--schema", "public"); !strings.Contains(out, "Schemas are synced") {
		t.Fatalf("schema diff db/db: %s", out)
	}

	// A destructive change: lint must fail naming the statement.
	changed := strings.Replace(testSchema, "    note       text        NULL,\n", "", 1)
	if err := os.WriteFile(schemaFile, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "schema", "diff", "--from", target, "--to", toURL, "--dev-url", dev, "--schema", "public"); !strings.Contains(out, `DROP COLUMN "note"`) {
		t.Fatalf("schema diff should show the drop: %s", out)
	}
	mustRun(t, "migrate", "diff", "drop_note", "--dir", dirURL, "--to", toURL, "--dev-url", dev)
	cfg := filepath.Join(work, "atlas.hcl")
	if err := os.WriteFile(cfg, []byte(`
variable "dev" {
  type = string
}
env "local" {
  dev = var.dev
  migration {
    dir = "`+dirURL+`"
  }
  lint {
    destructive {
      error = true
    }
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "migrate", "lint", "--env", "local", "-c", "file://"+cfg, "--var", "dev="+dev, "--latest", "1")
	if err == nil || !strings.Contains(out, `Dropping non-virtual column "note"`) {
		t.Fatalf("lint should fail on the destructive change: err=%v\n%s", err, out)
	}
	// A checksum mismatch is refused by apply and diff.
	files, _ = dir.Files()
	last := filepath.Join(work, "migrations", files[len(files)-1].Name())
	b, _ := os.ReadFile(last)
	if err := os.WriteFile(last, append(b, []byte("-- edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "migrate", "apply", "--dir", dirURL, "--url", target); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("apply must refuse a checksum mismatch, got %v", err)
	}
	if _, err := run(t, "migrate", "diff", "--dir", dirURL, "--to", toURL, "--dev-url", dev); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("diff must refuse a checksum mismatch, got %v", err)
	}
	mustRun(t, "migrate", "hash", "--dir", dirURL)
	if out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target, "--tx-mode", "all"); !strings.Contains(out, "1 migrations") {
		t.Fatalf("apply: %s", out)
	}
}

func TestIntegrationDirtyAndBaseline(t *testing.T) {
	dbs := testDBs(t, 2)
	dev, target := dbs[0], dbs[1]
	work := t.TempDir()
	schemaFile := filepath.Join(work, "schema.sql")
	if err := os.WriteFile(schemaFile, []byte(testSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	dirURL := "file://" + filepath.Join(work, "migrations")
	mustRun(t, "migrate", "diff", "init", "--dir", dirURL, "--to", "file://"+schemaFile, "--dev-url", dev)
	// A database that already has the schema but no revisions.
	execSQL(t, target, testSchema)
	if _, err := run(t, "migrate", "apply", "--dir", dirURL, "--url", target); err == nil || !strings.Contains(err.Error(), "not clean") {
		t.Fatalf("apply on a dirty database must fail, got %v", err)
	}
	dir, _ := migrate.NewLocalDir(filepath.Join(work, "migrations"))
	files, _ := dir.Files()
	mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target, "--baseline", files[0].Version())
	if out := mustRun(t, "migrate", "status", "--dir", dirURL, "--url", target); !strings.Contains(out, "OK") {
		t.Fatalf("status after baseline: %s", out)
	}
	// The dev database must be clean for diff.
	execSQL(t, dev, "CREATE TABLE junk (id int)")
	if _, err := run(t, "migrate", "diff", "--dir", dirURL, "--to", "file://"+schemaFile, "--dev-url", dev); err == nil || !strings.Contains(err.Error(), "not clean") {
		t.Fatalf("diff on a dirty dev database must fail, got %v", err)
	}
}

func TestIntegrationLockTimeout(t *testing.T) {
	dbs := testDBs(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := openClient(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unlock, err := c.Driver.Lock(ctx, applyLockName, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	work := t.TempDir()
	start := time.Now()
	_, err = run(t, "migrate", "apply", "--dir", "file://"+work, "--url", dbs[0], "--lock-timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "acquiring database lock") {
		t.Fatalf("expected a lock error, got %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("lock timeout not honoured: %v", d)
	}
}

func execSQL(t *testing.T, u, stmts string) {
	t.Helper()
	db, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmts); err != nil {
		t.Fatal(err)
	}
}

// checkRevisionsTable checks the layout and values the official CLI expects.
func checkRevisionsTable(t *testing.T, u string, f migrate.File) {
	t.Helper()
	db, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT column_name, data_type, is_nullable, coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'atlas_schema_revisions' AND table_name = 'atlas_schema_revisions' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n, typ, null, def string
		if err := rows.Scan(&n, &typ, &null, &def); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{n, typ, null, def}, "|"))
	}
	want := []string{
		"version|character varying|NO|",
		"description|character varying|NO|",
		"type|bigint|NO|2",
		"applied|bigint|NO|0",
		"total|bigint|NO|0",
		"executed_at|timestamp with time zone|NO|",
		"execution_time|bigint|NO|",
		"error|text|YES|",
		"error_stmt|text|YES|",
		"hash|character varying|NO|",
		"partial_hashes|jsonb|YES|",
		"operator_version|character varying|NO|",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("revisions table layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var (
		version, desc, hash string
		typ, applied, total int
	)
	if err := db.QueryRowContext(ctx, `SELECT version, description, type, applied, total, hash FROM atlas_schema_revisions.atlas_schema_revisions`).
		Scan(&version, &desc, &typ, &applied, &total, &hash); err != nil {
		t.Fatal(err)
	}
	if version != f.Version() || desc != f.Desc() || typ != int(migrate.RevisionTypeExecute) || applied != total || applied == 0 || hash == "" {
		t.Fatalf("unexpected revision row: %s %s %d %d/%d %q", version, desc, typ, applied, total, hash)
	}
}

// Issue 7 item 3: two `migrate diff` runs within one second wrote the same version
// and replayed in name order. The official CLI names files by the UTC second; ours
// never writes a version that is not greater than the newest one in the directory.
// The clock is stopped so both diffs run "within one second" on any machine.
func TestIntegrationDiffTwiceWithinOneSecond(t *testing.T) {
	dbs := testDBs(t, 2)
	dev, target := dbs[0], dbs[1]
	stopped := time.Date(2026, 11, 28, 11, 19, 52, 0, time.UTC)
	clock = func() time.Time { return stopped }
	t.Cleanup(func() { clock = time.Now })
	work := t.TempDir()
	schemaFile := filepath.Join(work, "schema.sql")
	if err := os.WriteFile(schemaFile, []byte(testSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	dirURL := "file://" + filepath.Join(work, "migrations")
	mustRun(t, "migrate", "diff", "initial", "--dir", dirURL, "--to", "file://"+schemaFile, "--dev-url", dev)
	changed := strings.Replace(testSchema, "    note       text        NULL,\n", "", 1)
	if err := os.WriteFile(schemaFile, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "migrate", "diff", "drop_note", "--dir", dirURL, "--to", "file://"+schemaFile, "--dev-url", dev)
	files, err := mustLocalDir(t, filepath.Join(work, "migrations")).Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Name() != "20261128111952_initial.sql" || files[1].Name() != "20261128111953_drop_note.sql" {
		t.Fatalf("want the second diff one second after the first, got %v", files)
	}
	// The files replay in the order they were written.
	if out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target); !strings.Contains(out, "2 migrations") {
		t.Fatalf("apply: %s", out)
	}
}

// Issue 7 item 9: after switching to a branch with fewer migrations, apply and status
// say that the database has revisions the directory lacks (the official v0.13.1 only
// says "No migration files to execute"; this note is ours).
func TestIntegrationDatabaseAheadOfDirectory(t *testing.T) {
	target := testDBs(t, 1)[0]
	p := writeDir(t, map[string]string{
		"20240101000000_init.sql": "CREATE TABLE t (id int);\n",
		"20240102000000_more.sql": "ALTER TABLE t ADD COLUMN a int;\n",
	})
	rehash := func() {
		d := mustLocalDir(t, p)
		sum, err := d.Checksum()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrate.WriteSumFile(d, sum); err != nil {
			t.Fatal(err)
		}
	}
	rehash()
	dirURL := "file://" + p
	if out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target); strings.Contains(out, "ahead") {
		t.Fatalf("apply: %s", out)
	}
	// The other branch: one migration less.
	if err := os.Remove(filepath.Join(p, "20240102000000_more.sql")); err != nil {
		t.Fatal(err)
	}
	rehash()
	const note = "The database is ahead of the migration directory: 1 applied revision(s) have no file in "
	out := mustRun(t, "migrate", "apply", "--dir", dirURL, "--url", target)
	if !strings.Contains(out, note+dirURL+":\n  -- 20240102000000 (more)\n") || !strings.Contains(out, "No migration files to execute") {
		t.Fatalf("apply should note the database is ahead:\n%s", out)
	}
	out = mustRun(t, "migrate", "status", "--dir", dirURL, "--url", target)
	if !strings.Contains(out, note) || !strings.Contains(out, "20240102000000 (more)") {
		t.Fatalf("status should note the database is ahead:\n%s", out)
	}
}
