package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// runStreams runs the CLI like main does and returns stdout, stderr and the exit code.
func runStreams(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runMain(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// Official behaviour (v0.13.1 cmdapi.checkDir/printChecksumError): without atlas.sum,
// `migrate apply` prints the hint on stdout and only "Error: checksum file not found"
// on stderr, before connecting to any database.
func TestChecksumHintOnStdoutLikeOfficial(t *testing.T) {
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "CREATE TABLE t (id int);\n"})
	for _, cmd := range [][]string{
		{"migrate", "apply", "--dir", "file://" + dir, "--url", "postgres://u:secret@127.0.0.1:1/db"},
		{"migrate", "status", "--dir", "file://" + dir, "--url", "postgres://u:secret@127.0.0.1:1/db"},
		{"migrate", "validate", "--dir", "file://" + dir},
	} {
		stdout, stderr, code := runStreams(t, cmd...)
		if code != 1 {
			t.Fatalf("%v: exit %d, want 1", cmd, code)
		}
		if stderr != "Error: checksum file not found\n" {
			t.Fatalf("%v: stderr %q, want only the error line", cmd, stderr)
		}
		if !strings.HasPrefix(stdout, "You have a checksum error in your migration directory.\n") ||
			!strings.Contains(stdout, "\n'atlas migrate hash'\n") {
			t.Fatalf("%v: stdout %q, want the official hint", cmd, stdout)
		}
	}
	// An edited file: same streams, and the error names the file.
	sum, err := mustLocalDir(t, dir).Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(mustLocalDir(t, dir), sum); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "20240101000000_init.sql"), []byte("CREATE TABLE t (id bigint);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runStreams(t, "migrate", "apply", "--dir", "file://"+dir, "--url", "postgres://u:secret@127.0.0.1:1/db")
	if code != 1 || !strings.HasPrefix(stderr, "Error: checksum mismatch") || !strings.Contains(stderr, "20240101000000_init.sql") ||
		!strings.Contains(stdout, "'atlas migrate hash'") {
		t.Fatalf("edited file: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

func mustLocalDir(t *testing.T, p string) *migrate.LocalDir {
	t.Helper()
	d, err := migrate.NewLocalDir(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The official CLI names files <UTC yyyymmddhhmmss>_<name>.sql; two diffs within one
// second must still write increasing versions (issue 7 item 3), so the second one
// takes the newest version plus one second.
func TestNextVersionAlwaysGreater(t *testing.T) {
	at := time.Date(2026, 11, 28, 11, 19, 52, 0, time.UTC)
	files := func(names ...string) []migrate.File {
		var fs []migrate.File
		for _, n := range names {
			fs = append(fs, migrate.NewLocalFile(n, nil))
		}
		return fs
	}
	for _, c := range []struct {
		files []migrate.File
		want  string
	}{
		{nil, "20261128111952"},
		{files("20261128111951_a.sql"), "20261128111952"},
		{files("20261128111952_a.sql"), "20261128111953"},
		{files("20261128111952_a.sql", "20261128111953_b.sql"), "20261128111954"},
		{files("20261128235959_a.sql"), "20261129000000"},
		{files("1_a.sql", "2_b.sql"), "20261128111952"},
	} {
		got, err := nextVersion(c.files, at)
		if err != nil || got != c.want {
			t.Fatalf("nextVersion(%v) = %q, %v; want %q", c.files, got, err, c.want)
		}
	}
	if _, err := nextVersion(files("9_a.sql"), at); err == nil {
		t.Fatal("a newest version that is not a timestamp and sorts after now must be refused")
	}
}

// Issue 7 item 15: `--var "name=value"` with literal quotes (as CI systems pass it) is a
// CSV record for the official CLI, so the quotes are not part of the name or value.
func TestVarWithLiteralQuotesLikeOfficial(t *testing.T) {
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "CREATE TABLE t (id int);\n"})
	cfg := filepath.Join(t.TempDir(), "atlas.hcl")
	if err := os.WriteFile(cfg, []byte(`
variable "dir" {
  type = string
}
env "ci" {
  migration {
    dir = var.dir
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runStreams(t, "migrate", "hash", "--env", "ci", "-c", "file://"+cfg, "--var", `"dir=file://`+dir+`"`)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if err := migrate.Validate(mustLocalDir(t, dir)); err != nil {
		t.Fatalf("atlas.sum not written for the quoted --var: %v", err)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }

// `atlas version | head -n 1` under pipefail died of SIGPIPE (exit 141) when head exited
// between two writes (issue 7 item 1). The version text is written in one write, which
// a pipe takes whole.
func TestVersionIsOneWrite(t *testing.T) {
	var w countingWriter
	root := newRoot()
	root.SetOut(&w)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil || w.writes != 1 {
		t.Fatalf("version: %d writes, err %v", w.writes, err)
	}
}
