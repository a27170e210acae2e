package main

import (
	"fmt"
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
	p, err := ParseProject([]byte(projectHCL), "atlas.hcl", map[string][]string{"url": {"from-flag"}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := p.Env("local")
	if e.URL != "from-flag" {
		t.Fatalf("--var should win over the default, got %q", e.URL)
	}
	if _, err := ParseProject([]byte(projectHCL), "atlas.hcl", map[string][]string{"nope": {"x"}}); err == nil {
		t.Fatal("expected an error for an undeclared --var")
	}
}

func TestParseProjectRejectsUnknown(t *testing.T) {
	for name, src := range map[string]string{
		"attr":     `env "x" { urll = "a" }`,
		"block":    "env \"x\" {\nmigrationz {\ndir = \"a\"\n}\n}",
		"migattr":  "env \"x\" {\nmigration {\ndirr = \"a\"\n}\n}",
		"toplevel": `foo "x" {}`,
		"required": `variable "v" { type = string }` + "\n" + `env "x" { url = var.v }`,
		"syntax":   `env "x" { url = }`,
		"twice":    `env "x" {` + "\n" + `migration { dir = "a" }` + "\n" + `migration { dir = "b" }` + "\n}",
		"format":   "env \"x\" {\nmigration {\nformat = \"golang-migrate\"\n}\n}",
		"migblock": `env "x" {` + "\n" + `migration {` + "\n" + `foo { }` + "\n}\n}",
		"latest":   `env "x" {` + "\n" + `lint { latest = "one" }` + "\n}",
		"srctype":  `env "x" { src = 1 }`,
	} {
		_, err := ParseProject([]byte(src), "atlas.hcl", nil)
		if err == nil {
			t.Errorf("%s: expected an error", name)
		} else if name != "syntax" && strings.Contains(err.Error(), "Argument definition required") {
			t.Errorf("%s: the case is an HCL syntax error, not what it tests: %v", name, err)
		}
	}
}

// Official behaviour (v0.13.1 cmdapi.Vars.Set, issue 7 item 15): each --var value is one
// CSV record of name=value fields; quotes are CSV quotes; a repeated name is a list.
func TestParseVarsCSVLikeOfficial(t *testing.T) {
	m, err := parseVars([]string{
		`"url=postgres://u:p@h:5432/db?sslmode=disable"`, // literal quotes, as CI systems pass it
		"a=1", "b=x=y", "c=2,d=3",
		`"dsn=postgres://app@db1:5432,db2:5432/identity"`, // a quoted comma stays in the value
		"k=a", "k=b,k=c",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"url": {"postgres://u:p@h:5432/db?sslmode=disable"},
		"a":   {"1"}, "b": {"x=y"}, "c": {"2"}, "d": {"3"},
		"dsn": {"postgres://app@db1:5432,db2:5432/identity"},
		"k":   {"a", "b", "c"},
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", m, want)
	}
	// The official CLI refuses a field without "=" (so `--var key=a,b` is an error there
	// too); neither error may echo the value, which is often a URL with a password.
	for _, bad := range []string{"novalue", "key=s3cret,pw", `"url=postgres://u:s3cret@h/db`} {
		_, err := parseVars([]string{bad})
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "novalue") {
			t.Fatalf("%q: got %v", bad, err)
		}
	}
}

// A repeated --var makes a list, which a list(string) variable takes; a single value
// fills a string variable and converts to number or bool when declared so.
func TestParseProjectTypedVars(t *testing.T) {
	const src = `
variable "srcs" {
  type = list(string)
}
variable "n" {
  type = number
  default = 1
}
variable "url" {
  type = string
}
env "x" {
  src = var.srcs
  url = var.url
  lint {
    latest = var.n
  }
}
`
	vars, err := parseVars([]string{"srcs=file://a.sql,srcs=file://b.sql", `"url=postgres://h/db?x=1,2"`, "n=3"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProject([]byte(src), "atlas.hcl", vars)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := p.Env("x")
	if strings.Join(e.Src, " ") != "file://a.sql file://b.sql" || e.URL != "postgres://h/db?x=1,2" || e.Lint.Latest != 3 {
		t.Fatalf("got %+v", e)
	}
	// Two values for a string variable are refused without echoing them.
	vars, _ = parseVars([]string{"srcs=file://a.sql", "url=postgres://u:s3cret@h/a", "url=postgres://u:s3cret@h/b"})
	if _, err := ParseProject([]byte(src), "atlas.hcl", vars); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("got %v", err)
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
