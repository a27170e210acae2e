package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"ariga.io/atlas/sql/migrate"
	_ "ariga.io/atlas/sql/postgres/postgrescheck"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlclient"
)

// dirPath returns the local path of a file:// migration directory URL.
func dirPath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("unsupported migration directory URL %q (only file:// is supported)", redactURL(raw))
	}
	if f := u.Query().Get("format"); f != "" && f != "atlas" {
		return "", fmt.Errorf("unsupported migration directory format %q (only atlas)", f)
	}
	p := filepath.Join(u.Host, u.Path)
	if p == "" {
		p = "migrations"
	}
	return p, nil
}

// openDir opens the migration directory, creating it if asked to.
func openDir(raw string, create bool) (*migrate.LocalDir, error) {
	p, err := dirPath(raw)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) && create {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	return migrate.NewLocalDir(p)
}

// openCheckedDir opens the migration directory and checks it against atlas.sum,
// printing the official hint to out (the command's standard output) on a mismatch.
func openCheckedDir(out io.Writer, raw string, create bool) (*migrate.LocalDir, error) {
	dir, err := openDir(raw, create)
	if err != nil {
		return nil, err
	}
	if err := validateDir(out, dir); err != nil {
		return nil, err
	}
	return dir, nil
}

// openTarget opens the database a command works on, which --url (or the env) must name.
func openTarget(ctx context.Context, url string) (*sqlclient.Client, error) {
	if url == "" {
		return nil, errors.New(`required flag "url" not set`)
	}
	return openClient(ctx, url)
}

const checksumHelp = `You have a checksum error in your migration directory.
This happens if you manually create or edit a migration file.
Please check your migration files and run

'atlas migrate hash'

to re-hash the contents and resolve the error

`

// validateDir checks atlas.sum against the directory. On failure it prints the official
// hint to out and returns the error, which main prints on stderr: the official CLI
// writes the hint with cmd.OutOrStderr() on a root command whose output is stdout, so
// the hint goes to stdout and "Error: checksum file not found" (or "checksum mismatch")
// to stderr.
func validateDir(out io.Writer, dir migrate.Dir) error {
	err := migrate.Validate(dir)
	if err == nil {
		return nil
	}
	fmt.Fprint(out, checksumHelp)
	return checksumErr(err)
}

// checksumErr keeps the official error text ("checksum mismatch", "checksum file not
// found", ...) and names the file that differs when the engine knows it.
func checksumErr(err error) error {
	var cerr *migrate.ChecksumError
	if errors.As(err, &cerr) {
		return fmt.Errorf("%w (atlas.sum line %d, file %q %s)", err, cerr.Line, cerr.File, cerr.Reason)
	}
	return err
}

// sqlSourceDir turns file:// URLs of SQL files (or directories of SQL files) into an
// in-memory migration directory with a valid sum, to be replayed on the dev database.
func sqlSourceDir(urls []string) (migrate.Dir, error) {
	var paths []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(u.Host, u.Path)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			if filepath.Ext(p) != ".sql" {
				return nil, fmt.Errorf("unsupported schema file %q: atlas-engine reads SQL (.sql) schema files only", p)
			}
			paths = append(paths, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && filepath.Ext(e.Name()) == ".sql" {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			paths = append(paths, filepath.Join(p, n))
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("schema contains no SQL files")
	}
	dir := &migrate.MemDir{}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		// Versions only order the files; names stay recognisable in errors.
		name := fmt.Sprintf("%06d_%s", i+1, filepath.Base(p))
		if err := dir.WriteFile(name, b); err != nil {
			return nil, err
		}
	}
	sum, err := dir.Checksum()
	if err != nil {
		return nil, err
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		return nil, err
	}
	return dir, nil
}

// connState returns the state reader of the connection: the realm, or the schema of the URL.
func connState(c *sqlclient.Client, schemas, exclude []string) migrate.StateReader {
	if c.URL.Schema != "" {
		return migrate.SchemaConn(c.Driver, "", &schema.InspectOptions{Exclude: exclude})
	}
	return migrate.RealmConn(c.Driver, &schema.InspectRealmOption{Schemas: schemas, Exclude: exclude})
}

// replayState replays dir on the (clean) dev database and returns its state.
// The dev database is restored to its previous (clean) state afterwards.
func replayState(ctx context.Context, dev *sqlclient.Client, dir migrate.Dir, schemas, exclude []string) (*schema.Realm, error) {
	ex, err := migrate.NewExecutor(dev.Driver, dir, migrate.NopRevisionReadWriter{})
	if err != nil {
		return nil, err
	}
	r, err := ex.Replay(ctx, connState(dev, schemas, exclude))
	if err != nil && !errors.Is(err, migrate.ErrNoPendingFiles) {
		return nil, err
	}
	return r, nil
}
