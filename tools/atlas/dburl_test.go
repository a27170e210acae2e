package main

import (
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

// pieces are the parts of a password an error could quote (Go's URL parser quotes the
// text after the first ":" up to a "/", "?" or "#": `invalid port ":<piece>"`).
func leaked(out, password string) string {
	for _, p := range strings.FieldsFunc(password, func(r rune) bool { return strings.ContainsRune("/?#@:", r) }) {
		if len(p) >= 3 && strings.Contains(out, p) {
			return p
		}
	}
	return ""
}

// Issue 8 item 3: a password with an unencoded "/", "#" or "?" made Go's parser print
// `invalid port ":<password>"`. Every such URL is refused with a message that quotes
// nothing of it and says to percent-encode.
func TestParseDBURLNeverQuotesThePassword(t *testing.T) {
	const pw = "Zq9x/Yv7w#Uu6t?Ss5r@Rr4q"
	for _, raw := range []string{
		"postgres://app:" + pw + "@db.example:5432/identity",
		"postgres://app:Zq9x/Yv7w@db.example/identity",
		"postgres://app:123/Yv7w@db.example/identity",
		"postgres://app:123?Yv7w@db.example/identity",
		"postgres://app:123#Yv7w@db.example/identity",
		"postgresql://app:Zq9x#Yv7w@db1:5432,db2:5432/identity",
		"postgres://app:Zq9x Yv7w@db.example/identity",
		"app:Zq9xYv7w@db.example/identity",
		"postgres//app:Zq9xYv7w@db.example/identity",
	} {
		_, err := parseDBURL(raw)
		if err == nil {
			t.Fatalf("%q: accepted", raw)
		}
		msg := redactError(err)
		if p := leaked(err.Error(), pw+"Zq9xYv7w"); p != "" || strings.Contains(err.Error(), "Yv7w") {
			t.Fatalf("%q: error quotes %q: %s", raw, p, err)
		}
		if strings.Contains(raw, "://") && !strings.Contains(msg, "percent-encoded") && !strings.Contains(msg, "expected postgres://") {
			t.Fatalf("%q: unclear error: %s", raw, msg)
		}
	}
	// Encoded passwords, an unencoded "@" (the last "@" ends the user info, as in Go and
	// libpq) and multi-host URLs are accepted.
	for raw, want := range map[string]string{
		"postgres://app:" + url.PathEscape("a/b#c?d") + "@h:5432/db":                "a/b#c?d",
		"postgres://app:p@ss@h/db":                                                  "p@ss",
		"postgres://app@db1:5432,db2:5433/identity?target_session_attrs=read-write": "",
		"postgresql://h/db?user=a@b":                                                "",
	} {
		d, err := parseDBURL(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if p, _ := d.User.Password(); p != want {
			t.Fatalf("%q: password %q, want %q", raw, p, want)
		}
	}
	d, _ := parseDBURL("postgres://app:s3cretPW@db1:5432,db2:5433/identity")
	if strings.Join(d.hosts, " ") != "db1:5432 db2:5433" || d.Path != "/identity" || strings.Contains(d.redacted(), "s3cretPW") {
		t.Fatalf("multi-host: %v %q %q", d.hosts, d.Path, d.redacted())
	}
}

// adminDB opens the integration server's base database.
func adminDB(t *testing.T) (*sql.DB, *url.URL) {
	t.Helper()
	base := os.Getenv(envURLBase)
	if base == "" {
		t.Skipf("integration test skipped: set %s", envURLBase)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
}

// Issue 8 item 3 against a real server: a role whose password holds every character
// that breaks URLs. Unencoded, no command prints any piece of it; encoded, it works;
// an unencoded "@" alone works as in libpq.
func TestIntegrationPasswordNeverPrinted(t *testing.T) {
	target := testDBs(t, 1)[0]
	admin, base := adminDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	role := fmt.Sprintf("atlasengine_it_role_%d", rand.Int63n(1<<40))
	const pw = "Zq9x/Yv7w#Uu6t?Ss5r@Rr4q:Pp3o"
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, pw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP ROLE IF EXISTS "+role)
	})
	tu, _ := url.Parse(target)
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "SELECT 1;\n"})
	if _, _, code := runStreams(t, "migrate", "hash", "--dir", "file://"+dir); code != 0 {
		t.Fatal("hash failed")
	}
	hostPath := "@" + base.Host + tu.Path + "?sslmode=disable"
	for _, raw := range []string{
		"postgres://" + role + ":" + pw + hostPath,
		"postgres://" + role + ":Zq9x/Yv7w" + hostPath,
		"postgres://" + role + ":123/Yv7w" + hostPath,
		"postgres://" + role + ":123?Yv7w" + hostPath,
		"postgres://" + role + ":123#Yv7w" + hostPath,
		"postgres://" + role + ":Zq9x Yv7w" + hostPath,
		"postgres://" + role + ":Zq9x%zzYv7w" + hostPath,
	} {
		for _, args := range [][]string{
			{"migrate", "status", "--dir", "file://" + dir, "--url", raw},
			{"migrate", "apply", "--dir", "file://" + dir, "--url", raw},
			{"migrate", "lint", "--dir", "file://" + dir, "--dev-url", raw, "--latest", "1"},
			{"schema", "diff", "--from", raw, "--to", raw},
		} {
			stdout, stderr, code := runStreams(t, args...)
			if code == 0 {
				t.Fatalf("%v: succeeded with an unencoded password", args[:2])
			}
			if p := leaked(stdout+stderr, pw+"/Zq9x/Yv7w/123"); p != "" {
				t.Fatalf("%v: output holds %q:\n%s%s", args[:2], p, stdout, stderr)
			}
			if !strings.Contains(stderr, "percent-encoded") {
				t.Fatalf("%v: unclear error:\n%s", args[:2], stderr)
			}
		}
	}
	// Encoded, the same password works.
	enc := "postgres://" + url.UserPassword(role, pw).String() + hostPath
	if stdout, stderr, code := runStreams(t, "migrate", "status", "--dir", "file://"+dir, "--url", enc); code != 0 || strings.Contains(stdout+stderr, "Yv7w") {
		t.Fatalf("encoded password: exit %d\n%s%s", code, stdout, stderr)
	}
	// Wrong password: the server's refusal, without the password.
	stdout, stderr, code := runStreams(t, "migrate", "status", "--dir", "file://"+dir, "--url", "postgres://"+role+":Wr0ngPassw0rd"+hostPath)
	if code == 0 || strings.Contains(stdout+stderr, "Wr0ngPassw0rd") || !strings.Contains(stderr, "xxxxx") {
		t.Fatalf("wrong password: exit %d\n%s%s", code, stdout, stderr)
	}
	// An unencoded "@" alone is read like libpq reads it (the last "@" ends the user info).
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD 'Zq9x@Yv7w'", role)); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runStreams(t, "migrate", "status", "--dir", "file://"+dir, "--url", "postgres://"+role+":Zq9x@Yv7w"+hostPath); code != 0 {
		t.Fatalf("unencoded @: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Issue 8 item 3, multi-host URLs (libpq's failover form): the hosts are tried in order
// and target_session_attrs is honoured. The first host here refuses connections (a
// closed port), the second is the test server, a primary.
func TestIntegrationMultiHostURL(t *testing.T) {
	target := testDBs(t, 1)[0]
	_, base := adminDB(t)
	tu, _ := url.Parse(target)
	closed := "127.0.0.1:1"
	multi := func(attrs string) string {
		u := *tu
		u.Host = closed + "," + base.Host
		q := u.Query()
		if attrs != "" {
			q.Set("target_session_attrs", attrs)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "CREATE TABLE t (id int);\n"})
	mustRun(t, "migrate", "hash", "--dir", "file://"+dir)
	if out := mustRun(t, "migrate", "apply", "--dir", "file://"+dir, "--url", multi("read-write")); !strings.Contains(out, "1 migrations") {
		t.Fatalf("apply via multi-host URL: %s", out)
	}
	for _, attrs := range []string{"", "any", "primary", "prefer-standby"} {
		if out := mustRun(t, "migrate", "status", "--dir", "file://"+dir, "--url", multi(attrs)); !strings.Contains(out, "Migration Status: OK") {
			t.Fatalf("%s: %s", attrs, out)
		}
	}
	pw, _ := tu.User.Password()
	for attrs, why := range map[string]string{"standby": "server is not a standby", "read-only": "session is read-write"} {
		stdout, stderr, code := runStreams(t, "migrate", "status", "--dir", "file://"+dir, "--url", multi(attrs))
		if code == 0 || !strings.Contains(stderr, "no host of ") || !strings.Contains(stderr, base.Host+": "+why) ||
			(len(pw) >= 3 && strings.Contains(stdout+stderr, pw)) {
			t.Fatalf("%s: exit %d\n%s%s", attrs, code, stdout, stderr)
		}
	}
}

// A database URL given without its scheme is not echoed either.
func TestDesiredSourceNeverEchoesAURL(t *testing.T) {
	_, _, err := desiredSource([]string{"app:Zq9xYv7w@db.example/identity"})
	if err == nil || strings.Contains(err.Error(), "Zq9xYv7w") {
		t.Fatalf("got %v", err)
	}
	if _, _, err := desiredSource([]string{"schema.sql"}); err == nil || !strings.Contains(err.Error(), "Did you mean file://schema.sql?") {
		t.Fatalf("the official hint for a file is kept, got %v", err)
	}
}

// With a streaming standby of the test server (ATLAS_ENGINE_TEST_STANDBY_HOST=host:port),
// target_session_attrs picks the right server of a primary+standby URL, as libpq does:
// read-write finds the primary behind a standby listed first; standby finds the standby
// (apply then fails on the read-only server, which shows where it went).
func TestIntegrationMultiHostPrimaryAndStandby(t *testing.T) {
	standby := os.Getenv("ATLAS_ENGINE_TEST_STANDBY_HOST")
	if standby == "" {
		t.Skip("set ATLAS_ENGINE_TEST_STANDBY_HOST to host:port of a streaming standby of the test server")
	}
	target := testDBs(t, 1)[0]
	_, base := adminDB(t)
	tu, _ := url.Parse(target)
	multi := func(attrs string, hosts ...string) string {
		u := *tu
		u.Host = strings.Join(hosts, ",")
		q := u.Query()
		q.Set("target_session_attrs", attrs)
		u.RawQuery = q.Encode()
		return u.String()
	}
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "CREATE TABLE t (id int);\n"})
	mustRun(t, "migrate", "hash", "--dir", "file://"+dir)
	// The scratch database reaches the standby by replication; wait for it (bounded).
	var out string
	var err error
	for i := 0; i < 50; i++ {
		if out, err = run(t, "migrate", "status", "--dir", "file://"+dir, "--url", multi("standby", standby)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the standby never served the scratch database: %v\n%s", err, out)
	}
	if _, err := run(t, "migrate", "apply", "--dir", "file://"+dir, "--url", multi("standby", base.Host, standby)); err == nil ||
		!strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("standby: apply should have reached the read-only standby, got %v", err)
	}
	if out := mustRun(t, "migrate", "apply", "--dir", "file://"+dir, "--url", multi("read-write", standby, base.Host)); !strings.Contains(out, "1 migrations") {
		t.Fatalf("read-write: apply should have reached the primary:\n%s", out)
	}
	if _, err := run(t, "migrate", "status", "--dir", "file://"+dir, "--url", multi("primary", standby)); err == nil ||
		!strings.Contains(err.Error(), standby+": server is a standby") {
		t.Fatalf("primary with only the standby listed: got %v", err)
	}
}

// Issue 20 item 6: a password given as a query option (password=, sslpassword=) or read
// from a password file (passfile=) was printed in every error naming the URL.
func TestCredentialOptionsNeverReachTheOutput(t *testing.T) {
	dir := writeDir(t, map[string]string{"20240101000000_init.sql": "CREATE TABLE t (id int);\n"})
	sum, err := mustLocalDir(t, dir).Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(mustLocalDir(t, dir), sum); err != nil {
		t.Fatal(err)
	}
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte("127.0.0.1:1:*:app:Pa55FromFile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"S3cretOpt", "K3yPassword", passfile, "Pa55FromFile", "U5erInfoPw"}
	base := "postgres://app:U5erInfoPw@127.0.0.1:1/db?sslmode=disable"
	urls := []string{
		"postgres://app@127.0.0.1:1/db?sslmode=disable&password=S3cretOpt",
		base + "&sslpassword=K3yPassword",
		"postgres://app@127.0.0.1:1/db?passfile=" + passfile + "&sslmode=disable",
		"postgres://app@127.0.0.1:1/db?PASSWORD=S3cretOpt&sslmode=disable",
	}
	for _, u := range urls {
		for _, cmd := range [][]string{
			{"migrate", "status", "--dir", "file://" + dir, "--url", u},
			{"migrate", "apply", "--dir", "file://" + dir, "--url", u},
			{"migrate", "diff", "--dir", "file://" + dir, "--to", "file://" + filepath.Join(dir, "20240101000000_init.sql"), "--dev-url", u},
			{"migrate", "lint", "--dir", "file://" + dir, "--latest", "1", "--dev-url", u},
			{"schema", "diff", "--from", u, "--to", u, "--dev-url", u},
		} {
			stdout, stderr, code := runStreams(t, cmd...)
			if code == 0 {
				t.Fatalf("%v: exit 0 against a closed port", cmd[:2])
			}
			for _, secret := range secrets {
				if strings.Contains(stdout+stderr, secret) {
					t.Fatalf("%v printed %q:\n%s%s", cmd[:2], secret, stdout, stderr)
				}
			}
		}
	}
}
