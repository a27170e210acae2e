package main

// Database URLs: parsing, redaction and multi-host connection.
//
// A password must never reach the output (issue 8 item 3). Go's URL parser quotes
// pieces of its input in its errors (`invalid port ":<password>"` when a password holds
// an unencoded "/", "#" or "?"), so parse errors are replaced by our own messages that
// quote nothing, every password seen (and a best guess for URLs that do not parse) is
// scrubbed from every error main prints, and URLs are printed only in redacted form.
//
// libpq's multi-host form `postgres://u@db1:5432,db2:5432/db?target_session_attrs=read-write`
// is accepted: the hosts are tried in order and the first one matching
// target_session_attrs is used for the whole command (a CLI run is short; it does not
// follow a failover that happens while it runs).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"

	_ "ariga.io/atlas/sql/postgres" // registers the postgres/postgresql opener with sqlclient
	"ariga.io/atlas/sql/sqlclient"
	_ "github.com/lib/pq" // database/sql driver "postgres", used by the engine's opener
)

var (
	secretsMu sync.Mutex
	secrets   []string // passwords seen in URLs; scrubbed from every printed error
)

// rememberSecret records the password of a URL so it never reaches the output. For a URL
// that does not parse, or parses wrongly because the password holds an unencoded "/",
// "?" or "#", the text between the first ":" after "://" and the last "@" is kept too.
func rememberSecret(raw string) {
	var found []string
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			found = append(found, p)
		}
	}
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				found = append(found, p)
				if up, err := url.PathUnescape(p); err == nil {
					found = append(found, up)
				}
			}
		}
	}
	found = append(found, secretOptions(raw)...)
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, p := range found {
		if p != "" {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
}

// credentialOptions are the connection options that carry a credential (libpq's names):
// a password, the key file's password, and the password file (its path and the
// passwords in it).
var credentialOptions = []string{"password", "sslpassword", "passfile"}

// secretOptions returns the values of the credential options of a URL's query, and the
// passwords of the password file it names (the last field of each line), when readable.
func secretOptions(raw string) []string {
	_, query, _ := strings.Cut(raw, "?")
	query, _, _ = strings.Cut(query, "#")
	values, _ := url.ParseQuery(query) // keeps what parses even when a pair does not
	var found []string
	for _, name := range credentialOptions {
		for _, v := range values[name] {
			found = append(found, v)
			if name == "passfile" {
				found = append(found, passfilePasswords(v)...)
			}
		}
	}
	return found
}

func passfilePasswords(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		// hostname:port:database:username:password, with "\:" an escaped colon.
		fields := strings.Split(strings.ReplaceAll(line, `\:`, "\x00"), ":")
		if len(fields) == 5 && !strings.HasPrefix(line, "#") {
			found = append(found, strings.ReplaceAll(strings.TrimSpace(fields[4]), "\x00", ":"))
		}
	}
	return found
}

// urlPassword matches the password of any URL in a text: up to the last "@" before white space.
var urlPassword = regexp.MustCompile(`(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)\S*@`)

// credentialOption matches a credential option's value in a URL's query or a
// key=value connection string, up to the next "&" or white space (a ":" ending it is
// taken for the message's own, as in "connecting to <url>: <why>").
var credentialOption = regexp.MustCompile(`(?i)\b((?:ssl)?password|passfile)=(?:[^&\s]*[^&\s:])?`)

// redact removes credentials from s: known ones, any user:pass@ in URLs and the values
// of credential options (password=, sslpassword=, passfile=).
func redact(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	s = credentialOption.ReplaceAllString(s, "${1}=xxxxx")
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, p := range secrets {
		if len(p) >= 3 {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}

func redactError(err error) string { return redact(err.Error()) }

// redactURL returns the URL with its password replaced; a URL that does not parse is
// not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		return "(URL not shown)"
	}
	return redact(u.Redacted())
}

// dbURL is a parsed database URL; hosts holds the host[:port] list of a multi-host URL.
type dbURL struct {
	*url.URL
	hosts []string
}

// redacted prints the URL with all its hosts and without the password.
func (d *dbURL) redacted() string {
	u := *d.URL
	u.Host = strings.Join(d.hosts, ",")
	return redact(u.Redacted())
}

const encodeHint = `a user name or password holding "/", "?", "#", "@", ":" or "%" must be percent-encoded ("/" as %2F, "?" as %3F, "#" as %23, "@" as %40, ":" as %3A, "%" as %25)`

// parseDBURL parses a postgres:// or postgresql:// URL. Its errors never quote the URL.
func parseDBURL(raw string) (*dbURL, error) {
	if raw == "" {
		return nil, errors.New("empty database URL")
	}
	rememberSecret(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("invalid database URL: expected postgres://user:password@host:port/database (the value is not shown, it may hold a password)")
	}
	switch scheme {
	case "postgres", "postgresql":
	default:
		if regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*$`).MatchString(scheme) {
			return nil, fmt.Errorf("unsupported database URL scheme %q (atlas-engine supports postgres:// and postgresql://)", scheme)
		}
		return nil, errors.New("invalid database URL: expected postgres://user:password@host:port/database (the value is not shown, it may hold a password)")
	}
	invalid := func(why string) error {
		return fmt.Errorf("invalid database URL %s://… (not shown: it may hold a password): %s. Note: %s", scheme, why, encodeHint)
	}
	if strings.Contains(raw, "#") {
		return nil, invalid(`it contains "#"`)
	}
	// The authority ends at the first "/" or "?"; its hosts follow the last "@" in it.
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo, hostlist := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hostlist = authority[:at+1], authority[at+1:]
	}
	hosts := strings.Split(hostlist, ",")
	// Go's parser checks one host[:port]; parse with the first host, keep the list.
	u, err := url.Parse(scheme + "://" + userinfo + hosts[0] + rest[end:])
	if err != nil {
		return nil, invalid("it cannot be parsed")
	}
	for _, h := range hosts[1:] {
		if _, err := url.Parse("postgres://" + h); err != nil || h == "" {
			return nil, invalid("a host in its host list is not host[:port]")
		}
	}
	// An "@" after the authority means the authority ended early: a "/" or "?" in the password.
	path := u.EscapedPath()
	if u.User == nil && (strings.Contains(path, "@") || queryKeyHas(u, "@")) {
		return nil, invalid(`it has an "@" after the host`)
	}
	if strings.Contains(strings.TrimPrefix(path, "/"), "/") {
		return nil, invalid(`its database name contains "/"`)
	}
	return &dbURL{URL: u, hosts: hosts}, nil
}

func queryKeyHas(u *url.URL, s string) bool {
	for k := range u.Query() {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

const paramTargetSessionAttrs = "target_session_attrs"

// pickHost returns a single-host URL to open: the first host of the list that accepts
// a connection and matches target_session_attrs (libpq's values: any, read-write,
// read-only, primary, standby, prefer-standby). lib/pq knows neither several hosts nor
// target_session_attrs, so both are resolved here and removed from the URL.
func pickHost(ctx context.Context, d *dbURL) (*url.URL, error) {
	q := d.Query()
	attrs := q.Get(paramTargetSessionAttrs)
	if attrs == "" {
		attrs = "any"
	}
	switch attrs {
	case "any", "read-write", "read-only", "primary", "standby", "prefer-standby":
	default:
		return nil, fmt.Errorf("invalid %s value %q (libpq accepts any, read-write, read-only, primary, standby, prefer-standby)", paramTargetSessionAttrs, attrs)
	}
	single := *d.URL
	if q.Has(paramTargetSessionAttrs) {
		q.Del(paramTargetSessionAttrs)
		single.RawQuery = q.Encode()
	}
	if len(d.hosts) == 1 && attrs == "any" {
		return &single, nil
	}
	passes := []string{attrs}
	if attrs == "prefer-standby" {
		passes = []string{"standby", "any"}
	}
	var reasons []string
	for _, want := range passes {
		for _, h := range d.hosts {
			c := single
			c.Host = h
			err := checkHost(ctx, &c, want)
			if err == nil {
				return &c, nil
			}
			reasons = append(reasons, fmt.Sprintf("%s: %s", h, redact(err.Error())))
		}
	}
	return nil, fmt.Errorf("no host of %s is usable with %s=%s: %s", d.redacted(), paramTargetSessionAttrs, attrs, strings.Join(reasons, "; "))
}

// checkHost connects to one host and checks the session against want.
func checkHost(ctx context.Context, u *url.URL, want string) error {
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	var (
		standby  bool
		readOnly string
	)
	if err := db.QueryRowContext(ctx, `SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')`).
		Scan(&standby, &readOnly); err != nil {
		return err
	}
	switch {
	case want == "read-write" && readOnly == "on":
		return errors.New("session is read-only")
	case want == "read-only" && readOnly != "on":
		return errors.New("session is read-write")
	case want == "primary" && standby:
		return errors.New("server is a standby")
	case want == "standby" && !standby:
		return errors.New("server is not a standby")
	}
	return nil
}

// openClient opens an Atlas client for a postgres:// or postgresql:// URL.
func openClient(ctx context.Context, raw string) (*sqlclient.Client, error) {
	d, err := parseDBURL(raw)
	if err != nil {
		return nil, err
	}
	u, err := pickHost(ctx, d)
	if err != nil {
		return nil, err
	}
	c, err := sqlclient.OpenURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %s", redact(u.Redacted()), redact(err.Error()))
	}
	return c, nil
}

// openTarget opens the database a command works on, which --url (or the env) must name.
func openTarget(ctx context.Context, url string) (*sqlclient.Client, error) {
	if url == "" {
		return nil, errors.New(`required flag "url" not set`)
	}
	return openClient(ctx, url)
}
