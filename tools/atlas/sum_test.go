package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestSumRoundTrip(t *testing.T) {
	p := writeDir(t, map[string]string{
		"20240101000000_init.sql": "CREATE TABLE t (id int);\n",
		"20240102000000_more.sql": "ALTER TABLE t ADD COLUMN x int;\n",
	})
	dir, err := openDir("file://"+p, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.Validate(dir); !errors.Is(err, migrate.ErrChecksumNotFound) {
		t.Fatalf("expected missing checksum, got %v", err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
	if err := validateDir(io.Discard, dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(p, "atlas.sum"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Official format: total hash line, then "<file> h1:<base64>" per file, in order.
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "h1:") ||
		!strings.HasPrefix(lines[1], "20240101000000_init.sql h1:") ||
		!strings.HasPrefix(lines[2], "20240102000000_more.sql h1:") {
		t.Fatalf("unexpected atlas.sum:\n%s", b)
	}
	// Editing a file must be refused, naming the checksum problem.
	if err := os.WriteFile(filepath.Join(p, "20240102000000_more.sql"), []byte("DROP TABLE t;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = validateDir(io.Discard, dir)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), "20240102000000_more.sql") {
		t.Fatalf("expected checksum mismatch naming the file, got %v", err)
	}
}

// TestSumKnownValue pins the hash format against a value computed by the official
// Atlas CLI v0.13.1 (`atlas migrate hash`) for the same one-file directory.
func TestSumKnownValue(t *testing.T) {
	p := writeDir(t, map[string]string{"1_a.sql": "CREATE TABLE a (id int);\n"})
	dir, err := openDir("file://"+p, false)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sum.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if want := officialSumOneFile; string(b) != want {
		t.Fatalf("atlas.sum differs from the official CLI's:\ngot:\n%s\nwant:\n%s", b, want)
	}
}

func TestSQLSourceDir(t *testing.T) {
	p := writeDir(t, map[string]string{"b.sql": "CREATE TABLE b (id int);", "a.sql": "CREATE TABLE a (id int);"})
	d, err := sqlSourceDir([]string{"file://" + p})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.Validate(d); err != nil {
		t.Fatal(err)
	}
	files, err := d.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || !strings.HasSuffix(files[0].Name(), "a.sql") {
		t.Fatalf("unexpected files: %v", files)
	}
	if _, err := sqlSourceDir([]string{"file://" + filepath.Join(p, "missing.sql")}); err == nil {
		t.Fatal("expected error for a missing file")
	}
}

func TestDirPath(t *testing.T) {
	for in, want := range map[string]string{
		"file://migrations":       "migrations",
		"file:///abs/path":        "/abs/path",
		"file://a/b?format=atlas": "a/b",
	} {
		got, err := dirPath(in)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"mem://x", "file://m?format=flyway"} {
		if _, err := dirPath(in); err == nil {
			t.Errorf("%s: expected error", in)
		}
	}
}

// officialSumOneFile was written by the official `atlas migrate hash` (v0.13.1).
const officialSumOneFile = "h1:JZORJemkf5QlSvUqAa98MfXPcevLUrDdxZAxUb/VSPk=\n1_a.sql h1:e72Wd39UNYY4sGrVkNYkCs4GRrWBQ0ASXh73rS+WpU4=\n"
