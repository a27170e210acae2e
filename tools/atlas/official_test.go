package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// Side-by-side checks against the official CLI v0.13.1 (`make compat` runs them with
// the binary it builds and a PostgreSQL 15 server, the newest v0.13.1 speaks to):
//
//	ATLAS_CE_BIN=.tools/bin/atlas-ce-v0.13.1 ATLAS_ENGINE_TEST_PG15_URL_BASE=postgres://...
const (
	envOfficialBin = "ATLAS_CE_BIN"
	envPG15URLBase = "ATLAS_ENGINE_TEST_PG15_URL_BASE"
)

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

func runOfficial(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "ATLAS_NO_UPDATE_NOTIFIER=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the official CLI: %v", err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func runOurs(t *testing.T, args ...string) result {
	t.Helper()
	stdout, stderr, code := runStreams(t, args...)
	return result{code, stdout, stderr}
}

// TestOfficialSameOutput runs both CLIs on the same inputs and requires identical exit
// codes, stdout and stderr: lint (renames, backfills, atlas:nolint in every placement)
// and apply without atlas.sum (issue 7 items 7, 12, 13, 14).
func TestOfficialSameOutput(t *testing.T) {
	bin, base := os.Getenv(envOfficialBin), os.Getenv(envPG15URLBase)
	if bin == "" || base == "" {
		t.Skipf("set %s and %s (make compat does) to compare with the official CLI", envOfficialBin, envPG15URLBase)
	}
	dbs := testDBsOn(t, base, 2)
	dev, target := dbs[0], dbs[1]
	for name, body := range map[string]string{
		"rename table":         "ALTER TABLE users RENAME TO atlas_users;\n",
		"rename column":        "ALTER TABLE users RENAME COLUMN id TO uid;\n",
		"rename column no kw":  "-- c\nALTER TABLE ONLY public.users RENAME a TO c;\n",
		"rename index":         "ALTER INDEX users_a_idx RENAME TO users_a_key;\n",
		"drop table":           "DROP TABLE users;\n",
		"backfilled":           "UPDATE users SET a = 0 WHERE a IS NULL;\nALTER TABLE users ALTER COLUMN a SET NOT NULL;\n",
		"backfilled, no where": "UPDATE users SET a = 0;\nALTER TABLE users ALTER COLUMN a SET NOT NULL;\n",
		"not backfilled":       "ALTER TABLE users ALTER COLUMN a SET NOT NULL;\n",
		"partly backfilled":    "UPDATE users SET a = 0 WHERE id < 10;\nALTER TABLE users ALTER COLUMN a SET NOT NULL;\n",
		"no directive":         "ALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n",
		"nolint analyzer":      "-- atlas:nolint destructive\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n",
		"nolint code":          "ALTER TABLE users DROP COLUMN a;\n-- atlas:nolint DS103\nALTER TABLE users DROP COLUMN b;\n",
		"nolint bare":          "-- atlas:nolint\nALTER TABLE users DROP COLUMN a;\n-- atlas:nolint\nALTER TABLE users DROP COLUMN b;\n",
		"nolint other":         "-- atlas:nolint incompatible DS102\nALTER TABLE users DROP COLUMN a;\n",
		"nolint header":        "-- atlas:nolint destructive\n\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n",
		"nolint header bare":   "-- atlas:nolint\n\nDROP TABLE users;\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeDir(t, map[string]string{"20240101000000_base.sql": lintBase, "20240102000000_change.sql": body})
			d := mustLocalDir(t, p)
			sum, err := d.Checksum()
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate.WriteSumFile(d, sum); err != nil {
				t.Fatal(err)
			}
			args := []string{"migrate", "lint", "--dir", "file://" + p, "--dev-url", dev, "--latest", "1"}
			if ours, official := runOurs(t, args...), runOfficial(t, bin, args...); ours != official {
				t.Fatalf("ours:\n%s\nofficial:\n%s", ours, official)
			}
		})
	}
	t.Run("apply without atlas.sum", func(t *testing.T) {
		p := writeDir(t, map[string]string{"20240101000000_base.sql": lintBase})
		args := []string{"migrate", "apply", "--dir", "file://" + p, "--url", target}
		if ours, official := runOurs(t, args...), runOfficial(t, bin, args...); ours != official {
			t.Fatalf("ours:\n%s\nofficial:\n%s", ours, official)
		}
	})
	t.Run("var with literal quotes", func(t *testing.T) {
		p := writeDir(t, map[string]string{"20240101000000_base.sql": lintBase})
		cfg := filepath.Join(t.TempDir(), "atlas.hcl")
		if err := os.WriteFile(cfg, []byte("variable \"url\" {\n  type = string\n}\nenv \"ci\" {\n  url = var.url\n  migration {\n    dir = \"file://"+p+"\"\n  }\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := runOurs(t, "migrate", "hash", "--dir", "file://"+p); r.code != 0 {
			t.Fatal(r)
		}
		args := []string{"migrate", "status", "--env", "ci", "-c", "file://" + cfg, "--var", `"url=` + target + `"`}
		if ours, official := runOurs(t, args...), runOfficial(t, bin, args...); ours != official {
			t.Fatalf("ours:\n%s\nofficial:\n%s", ours, official)
		}
	})
}
