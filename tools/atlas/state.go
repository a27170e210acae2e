package main

// Schema states: SQL files replayed on the dev database, and database connections.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlclient"
)

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
