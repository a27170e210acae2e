package main

import (
	"strings"
	"testing"

	"ariga.io/atlas/sql/sqlcheck/destructive"
)

// projectHCL is the shape of identity-store's atlas.hcl.
const projectHCL = `
variable "url" {
  type    = string
  default = getenv("ATLAS_ENGINE_TEST_DB")
}

variable "dev_url" {
  type    = string
  default = getenv("ATLAS_ENGINE_TEST_DEV")
}

env "local" {
  src = "file://schema.sql"
  url = var.url
  dev = var.dev_url
  migration {
    dir = "file://migrations"
  }
  lint {
    destructive {
      error = true
    }
  }
}

env "prod" {
  url = var.url
  migration {
    dir              = "file://migrations"
    revisions_schema = "custom_revisions"
  }
  lint {
    latest = 3
    destructive {
      error = false
    }
  }
}
`

func TestParseProjectEnvAndGetenv(t *testing.T) {
	t.Setenv("ATLAS_ENGINE_TEST_DB", "postgres://u:p@127.0.0.1:1/db")
	t.Setenv("ATLAS_ENGINE_TEST_DEV", "postgres://u:p@127.0.0.1:1/dev")
	p, err := ParseProject([]byte(projectHCL), "atlas.hcl", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Env("local")
	if err != nil {
		t.Fatal(err)
	}
	if e.URL != "postgres://u:p@127.0.0.1:1/db" || e.DevURL != "postgres://u:p@127.0.0.1:1/dev" {
		t.Fatalf("urls: %q %q", e.URL, e.DevURL)
	}
	if len(e.Src) != 1 || e.Src[0] != "file://schema.sql" {
		t.Fatalf("src: %q", e.Src)
	}
	if e.Migration.Dir != "file://migrations" || e.Migration.RevisionsSchema != "" {
		t.Fatalf("migration: %+v", e.Migration)
	}
	az, err := destructive.New(e.Lint.Analyzers)
	if err != nil {
		t.Fatal(err)
	}
	if az.Error == nil || !*az.Error {
		t.Fatal("destructive.error should be true")
	}
	prod, err := p.Env("prod")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Migration.RevisionsSchema != "custom_revisions" || prod.Lint.Latest != 3 {
		t.Fatalf("prod: %+v", prod)
	}
	az, err = destructive.New(prod.Lint.Analyzers)
	if err != nil {
		t.Fatal(err)
	}
	if az.Error == nil || *az.Error {
		t.Fatal("destructive.error should be false in prod")
	}
	if _, err := p.Env("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("expected unknown env error, got %v", err)
	}
}

func TestParseProjectVarOverride(t *testing.T) {
	t.Setenv("ATLAS_ENGINE_TEST_DB", "from-env")
	p, err := ParseProject([]byte(projectHCL), "atlas.hcl", map[string]string{"url": "from-flag"})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := p.Env("local")
	if e.URL != "from-flag" {
		t.Fatalf("--var should win over the default, got %q", e.URL)
	}
	if _, err := ParseProject([]byte(projectHCL), "atlas.hcl", map[string]string{"nope": "x"}); err == nil {
		t.Fatal("expected an error for an undeclared --var")
	}
}

func TestParseProjectRejectsUnknown(t *testing.T) {
	for name, src := range map[string]string{
		"attr":     `env "x" { urll = "a" }`,
		"block":    `env "x" { migrationz { dir = "a" } }`,
		"migattr":  `env "x" { migration { dirr = "a" } }`,
		"toplevel": `foo "x" {}`,
		"required": `variable "v" { type = string }` + "\n" + `env "x" { url = var.v }`,
		"syntax":   `env "x" { url = }`,
	} {
		if _, err := ParseProject([]byte(src), "atlas.hcl", nil); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

func TestParseVars(t *testing.T) {
	m, err := parseVars([]string{"a=1", "b=x=y", "c=2,d=3"})
	if err != nil {
		t.Fatal(err)
	}
	if m["a"] != "1" || m["b"] != "x=y" || m["c"] != "2" || m["d"] != "3" {
		t.Fatalf("%v", m)
	}
	if _, err := parseVars([]string{"novalue"}); err == nil {
		t.Fatal("expected error")
	}
}

func TestRedact(t *testing.T) {
	rememberSecret("postgres://user:s3cretPW@127.0.0.1:5432/db")
	got := redact("failed: postgres://user:s3cretPW@127.0.0.1:5432/db and s3cretPW again; other://a:b@h")
	if strings.Contains(got, "s3cretPW") || strings.Contains(got, ":b@") {
		t.Fatalf("not redacted: %s", got)
	}
	if r := redactURL("postgresql://u:pw123@h:1/d"); strings.Contains(r, "pw123") {
		t.Fatalf("not redacted: %s", r)
	}
}
