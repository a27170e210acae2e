package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
)

const lintBase = "CREATE TABLE users (id int NOT NULL, a int NULL, b int NULL, PRIMARY KEY (id));\n" +
	"CREATE INDEX users_a_idx ON users (a);\n"

// lintFile writes a migration directory (the base file plus the file to lint), hashes
// it, and runs `migrate lint --latest 1` on the dev database.
func lintFile(t *testing.T, dev, content string) (stdout, stderr string, code int) {
	t.Helper()
	p := t.TempDir()
	for name, body := range map[string]string{"20240101000000_base.sql": lintBase, "20240102000000_change.sql": content} {
		if err := os.WriteFile(filepath.Join(p, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := mustLocalDir(t, p)
	sum, err := d.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(d, sum); err != nil {
		t.Fatal(err)
	}
	return runStreams(t, "migrate", "lint", "--dir", "file://"+p, "--dev-url", dev, "--latest", "1")
}

// Official behaviour (issue 7 items 13, 14; v0.13.1 DevLoader + pgparse): renames are
// read from the statements and reported as backward incompatible (a warning, exit 0),
// not as destructive drops; a column filled by UPDATE before SET NOT NULL is not
// reported as data dependent.
func TestIntegrationLintReadsStatementsLikeOfficial(t *testing.T) {
	dev := testDBs(t, 1)[0]
	for _, c := range []struct {
		name, file string
		code       int
		want, not  []string
	}{
		{"rename table", "ALTER TABLE users RENAME TO atlas_users;\n", 0,
			[]string{"20240102000000_change.sql: backward incompatible changes detected:\n\n\tL1: Renaming table \"users\" to \"atlas_users\"\n"},
			[]string{"destructive", "Dropping"}},
		{"rename column", "ALTER TABLE users RENAME COLUMN id TO uid;\n", 0,
			[]string{"backward incompatible changes detected:\n\n\tL1: Renaming column \"id\" to \"uid\"\n"},
			[]string{"destructive", "Dropping"}},
		{"rename column, keyword omitted", "-- keep the old name readable later\nALTER TABLE ONLY public.users RENAME a TO c;\n", 0,
			[]string{"\tL2: Renaming column \"a\" to \"c\"\n"}, []string{"destructive"}},
		{"rename index", "ALTER INDEX users_a_idx RENAME TO users_a_key;\n", 0, nil, []string{"destructive", "Dropping"}},
		{"drop table is still destructive", "DROP TABLE users;\n", 1,
			[]string{"destructive changes detected:\n\n\tL1: Dropping table \"users\"\n"}, nil},
		{"backfilled", "UPDATE users SET a = 0 WHERE a IS NULL;\nALTER TABLE users ALTER COLUMN a SET NOT NULL;\n", 0,
			nil, []string{"data dependent"}},
		{"not backfilled", "ALTER TABLE users ALTER COLUMN a SET NOT NULL;\n", 0,
			[]string{"data dependent changes detected:\n\n\tL1: Modifying nullable column \"a\" to non-nullable might fail in case it contains NULL values\n"}, nil},
		{"backfilled only partly", "UPDATE users SET a = 0 WHERE id < 10;\nALTER TABLE users ALTER COLUMN a SET NOT NULL;\n", 0,
			[]string{"\tL2: Modifying nullable column \"a\""}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := lintFile(t, dev, c.file)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stdout, w) {
					t.Fatalf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, n := range c.not {
				if strings.Contains(stdout, n) {
					t.Fatalf("stdout has %q:\n%s", n, stdout)
				}
			}
		})
	}
}

// Official behaviour (issue 7 item 7; v0.13.1 cmd/atlas/internal/lint/run.go nolintRules):
// `-- atlas:nolint [analyzer|code ...]` right above a statement silences that statement's
// matching diagnostics; in the file header it applies to every statement, and a bare
// `-- atlas:nolint` header skips the file.
func TestIntegrationLintNolintLikeOfficial(t *testing.T) {
	dev := testDBs(t, 1)[0]
	const drop = "Dropping non-virtual column"
	for _, c := range []struct {
		name, file string
		code       int
		reported   int // number of drop diagnostics left
	}{
		{"no directive", "ALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n", 1, 2},
		{"statement: analyzer", "-- atlas:nolint destructive\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n", 1, 1},
		{"statement: code", "ALTER TABLE users DROP COLUMN a;\n-- atlas:nolint DS103\nALTER TABLE users DROP COLUMN b;\n", 1, 1},
		{"statement: bare", "-- atlas:nolint\nALTER TABLE users DROP COLUMN a;\n-- atlas:nolint\nALTER TABLE users DROP COLUMN b;\n", 0, 0},
		{"statement: both silenced", "-- atlas:nolint destructive\nALTER TABLE users DROP COLUMN a;\n-- atlas:nolint DS103 BC102\nALTER TABLE users DROP COLUMN b;\n", 0, 0},
		{"statement: other analyzer", "-- atlas:nolint incompatible DS102\nALTER TABLE users DROP COLUMN a;\n", 1, 1},
		{"header: analyzer", "-- atlas:nolint destructive\n\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n", 0, 0},
		{"header: bare skips the file", "-- atlas:nolint\n\nDROP TABLE users;\n", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := lintFile(t, dev, c.file)
			if code != c.code || strings.Count(stdout, drop) != c.reported {
				t.Fatalf("exit %d (want %d), %d drops reported (want %d)\nstdout:\n%s\nstderr:\n%s",
					code, c.code, strings.Count(stdout, drop), c.reported, stdout, stderr)
			}
			if c.reported == 0 && strings.Contains(stdout, "destructive") {
				t.Fatalf("empty report expected:\n%s", stdout)
			}
		})
	}
}

// After editing a migration (for example to add an atlas:nolint directive), lint names
// the checksum problem and, unlike the official lint, also prints the official hint.
func TestIntegrationLintChecksumHint(t *testing.T) {
	dev := testDBs(t, 1)[0]
	p := writeDir(t, map[string]string{"20240101000000_base.sql": lintBase})
	d := mustLocalDir(t, p)
	sum, _ := d.Checksum()
	if err := migrate.WriteSumFile(d, sum); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "20240101000000_base.sql"), []byte("-- atlas:nolint\n\n"+lintBase), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runStreams(t, "migrate", "lint", "--dir", "file://"+p, "--dev-url", dev, "--latest", "1")
	if code != 1 || !strings.HasPrefix(stdout, fmt.Sprintf("atlas.sum: checksum mismatch")) || !strings.Contains(stdout, "'atlas migrate hash'") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
}
