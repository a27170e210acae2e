package main

// The migration directory: file:// URLs, atlas.sum checks and the official checksum hint.

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"ariga.io/atlas/sql/migrate"
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
