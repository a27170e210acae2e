package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"ariga.io/atlas/schemahcl"
	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	_ "ariga.io/atlas/sql/postgres/postgrescheck" // registers the PostgreSQL lint analyzers
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlcheck"
	"ariga.io/atlas/sql/sqlclient"
	"github.com/spf13/cobra"
)

type migrateLintFlags struct {
	devURL string
	dirURL string
	latest uint
}

func migrateLintCmd(g *globalFlags) *cobra.Command {
	var (
		flags migrateLintFlags
		env   *Env
	)
	cmd := &cobra.Command{
		Use:   "lint [flags]",
		Short: "Run analysis on the migration directory",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return envPreRun(g, &env)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.devURL == "" {
				return errors.New(`required flag "dev-url" not set`)
			}
			if flags.latest == 0 {
				return fmt.Errorf("--%s is required (atlas-engine does not implement --git-base)", flagLatest)
			}
			var cfg *schemahcl.Resource
			if env != nil {
				cfg = env.Lint.Analyzers
			}
			return migrateLintRun(cmd, flags, cfg)
		},
	}
	addFlagDevURL(cmd.Flags(), &flags.devURL)
	addFlagDirURL(cmd.Flags(), &flags.dirURL)
	cmd.Flags().UintVar(&flags.latest, flagLatest, 0, "run analysis on the latest N migration files")
	return cmd
}

// fileReport collects the reports of one file.
type fileReport struct {
	name    string
	text    string // file content, to turn positions into line numbers
	reports []sqlcheck.Report
}

func (f *fileReport) WriteReport(r sqlcheck.Report) { f.reports = append(f.reports, r) }

func (f *fileReport) line(pos int) int {
	if pos < 0 || pos > len(f.text) {
		return 0
	}
	return strings.Count(f.text[:pos], "\n") + 1
}

func migrateLintRun(cmd *cobra.Command, flags migrateLintFlags, cfg *schemahcl.Resource) error {
	ctx := cmd.Context()
	dir, err := openDir(flags.dirURL, false)
	if err != nil {
		return err
	}
	// Like the official runner: a broken atlas.sum is reported as a lint error.
	// We add the hint the other commands print (the official lint prints only the line),
	// since editing a file to add an atlas:nolint directive is how users get here.
	if err := migrate.Validate(dir); err != nil && !errors.Is(err, migrate.ErrChecksumNotFound) {
		cmd.Printf("%s: %v\n\n%s", migrate.HashFileName, checksumErr(err), checksumHelp)
		return exitError{code: 1}
	}
	all, err := dir.Files()
	if err != nil {
		return err
	}
	n := int(flags.latest)
	if n > len(all) {
		n = len(all)
	}
	base, feat := all[:len(all)-n], all[len(all)-n:]
	dev, err := openClient(ctx, flags.devURL)
	if err != nil {
		return err
	}
	defer dev.Close()
	az, err := sqlcheck.AnalyzerFor(postgres.DriverName, cfg)
	if err != nil {
		return err
	}
	ci, err := newConcurrentIndex(cfg)
	if err != nil {
		return err
	}
	az = append(az, ci)
	files, err := loadChanges(ctx, dev, base, feat)
	var ferr *lintFileError
	if errors.As(err, &ferr) {
		cmd.Printf("%s: %v\n", ferr.file, ferr.err)
		return exitError{code: 1}
	}
	if err != nil {
		return err
	}
	failed := false
	for _, f := range files {
		nl := nolintRules(f)
		if nl.ignored {
			continue
		}
		fr := &fileReport{name: f.Name(), text: string(f.Bytes())}
		var errs []string
		for _, a := range az {
			err := a.Analyze(ctx, &sqlcheck.Pass{File: f, Dev: dev, Reporter: nl.reporterFor(fr, a)})
			// An analyzer whose every diagnostic was silenced does not fail the file.
			if err != nil && !nl.skipped {
				errs = append(errs, err.Error())
			}
		}
		printLint(cmd.OutOrStdout(), fr, strings.Join(errs, "; "))
		failed = failed || len(errs) > 0
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

// nolintRules reads the "-- atlas:nolint" directives of a file, as the official CLI
// (v0.13.1 cmd/atlas/internal/lint/run.go) does:
//
//   - a bare "atlas:nolint" in the file header skips the whole file;
//   - "atlas:nolint destructive DS103 ..." in the file header applies to every statement;
//   - the same directive in the comment right above a statement applies to that statement.
//
// Each word is an analyzer name (destructive, data_depend, incompatible, condrop,
// concurrent_index, ...) or a diagnostic code (DS103, BC102, PG101, ...); a bare
// directive on a statement silences all its diagnostics.
func nolintRules(f *sqlcheck.File) *skipRules {
	s := &skipRules{pos2rules: make(map[int][]string)}
	if l, ok := f.File.(*migrate.LocalFile); ok {
		ds := l.Directive("nolint")
		if s.ignored = len(ds) == 1 && ds[0] == ""; s.ignored {
			return s
		}
		for _, d := range ds {
			for _, c := range f.Changes {
				s.pos2rules[c.Stmt.Pos] = append(s.pos2rules[c.Stmt.Pos], strings.Split(d, " ")...)
			}
		}
	}
	for _, c := range f.Changes {
		for _, d := range c.Stmt.Directive("nolint") {
			s.pos2rules[c.Stmt.Pos] = append(s.pos2rules[c.Stmt.Pos], strings.Split(d, " ")...)
		}
	}
	return s
}

type skipRules struct {
	pos2rules map[int][]string // statement position -> rules
	ignored   bool             // the whole file is skipped
	skipped   bool             // the last report was dropped entirely
}

// reporterFor filters the reports of one analyzer through the rules.
func (s *skipRules) reporterFor(w sqlcheck.ReportWriter, az sqlcheck.Analyzer) sqlcheck.ReportWriter {
	s.skipped = false
	named, isNamed := az.(sqlcheck.NamedAnalyzer)
	return sqlcheck.ReportWriterFunc(func(r sqlcheck.Report) {
		ds := make([]sqlcheck.Diagnostic, 0, len(r.Diagnostics))
		for _, d := range r.Diagnostics {
			rules := s.pos2rules[d.Pos]
			switch {
			case len(rules) == 1 && rules[0] == "",
				slices.Contains(rules, d.Code),
				isNamed && slices.Contains(rules, named.Name()):
			default:
				ds = append(ds, d)
			}
		}
		if s.skipped = len(ds) == 0; !s.skipped {
			w.WriteReport(sqlcheck.Report{Text: r.Text, Diagnostics: ds})
		}
	})
}

// printLint writes reports in the official default lint format.
func printLint(w io.Writer, fr *fileReport, errText string) {
	if errText != "" && len(fr.reports) == 0 {
		fmt.Fprintf(w, "%s: %s\n", fr.name, errText)
		return
	}
	for _, r := range fr.reports {
		switch {
		case r.Text != "":
			fmt.Fprintf(w, "%s: %s:\n\n", fr.name, r.Text)
		case len(r.Diagnostics) > 0:
			fmt.Fprintf(w, "Unnamed diagnostics for file %s:\n\n", fr.name)
		}
		for _, d := range r.Diagnostics {
			fmt.Fprintf(w, "\tL%d: %s\n", fr.line(d.Pos), d.Text)
		}
		if len(r.Diagnostics) > 0 {
			fmt.Fprint(w, "\n")
		}
	}
}

type lintFileError struct {
	file string
	err  error
}

func (e *lintFileError) Error() string { return e.file + ": " + e.err.Error() }

// loadChanges replays base on the dev database, then executes the files to lint statement
// by statement, recording the schema changes of each statement (as the official DevLoader).
// The dev database is restored afterwards.
func loadChanges(ctx context.Context, dev *sqlclient.Client, base, feat []migrate.File) (_ []*sqlcheck.File, rerr error) {
	unlock, err := dev.Driver.Lock(ctx, "atlas_lint", 0)
	if err != nil {
		return nil, fmt.Errorf("acquiring database lock: %w", err)
	}
	defer unlock()
	restore, err := dev.Driver.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking database snapshot: %w", err)
	}
	defer func() {
		if err := restore(ctx); err != nil {
			rerr = errors.Join(rerr, err)
		}
	}()
	inspect := func() (*schema.Realm, error) {
		opts := &schema.InspectRealmOption{}
		if dev.URL.Schema != "" {
			opts.Schemas = []string{dev.URL.Schema}
		}
		return dev.Driver.InspectRealm(ctx, opts)
	}
	for _, f := range base {
		stmts, err := f.StmtDecls()
		if err != nil {
			return nil, &lintFileError{f.Name(), fmt.Errorf("scanning statements: %w", err)}
		}
		for _, s := range stmts {
			if _, err := dev.ExecContext(ctx, s.Text); err != nil {
				return nil, &lintFileError{f.Name(), fmt.Errorf("executing statement: %w", err)}
			}
		}
	}
	current, err := inspect()
	if err != nil {
		return nil, err
	}
	out := make([]*sqlcheck.File, len(feat))
	for i, f := range feat {
		out[i] = &sqlcheck.File{File: f, From: current, Parser: stmtParser{}}
		stmts, err := f.StmtDecls()
		if err != nil {
			return nil, &lintFileError{f.Name(), fmt.Errorf("scanning statements: %w", err)}
		}
		start := current
		for _, s := range stmts {
			if _, err := dev.ExecContext(ctx, s.Text); err != nil {
				return nil, &lintFileError{f.Name(), fmt.Errorf("executing statement: %w", err)}
			}
			target, err := inspect()
			if err != nil {
				return nil, err
			}
			changes, err := dev.Driver.RealmDiff(current, target)
			if err != nil {
				return nil, err
			}
			current = target
			// Like the official DevLoader: read the statement to tell renames from drops.
			out[i].Changes = append(out[i].Changes, &sqlcheck.Change{Stmt: s, Changes: fixRenames(s.Text, changes)})
		}
		if out[i].Sum, err = dev.Driver.RealmDiff(start, current); err != nil {
			return nil, err
		}
		out[i].To = current
	}
	return out, nil
}
