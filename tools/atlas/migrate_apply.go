package main

// migrate apply: run pending migration files, with the official locking, revisions
// table, transaction modes and report.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/template"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlclient"
	"github.com/spf13/cobra"
)

type migrateApplyFlags struct {
	url            string
	dirURL         string
	revisionSchema string
	dryRun         bool
	lockTimeout    time.Duration
	allowDirty     bool
	baseline       string
	txMode         string
}

const (
	txModeNone = "none"
	txModeFile = "file"
	txModeAll  = "all"
)

func migrateApplyCmd(g *globalFlags) *cobra.Command {
	var flags migrateApplyFlags
	cmd := &cobra.Command{
		Use:     "apply [flags] [amount]",
		Short:   "Applies pending migration files on the connected database.",
		Args:    cobra.MaximumNArgs(1),
		PreRunE: envPreRun(g, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			return migrateApplyRun(cmd, args, flags)
		},
	}
	f := cmd.Flags()
	addFlagURL(f, &flags.url)
	addFlagDirURL(f, &flags.dirURL)
	addFlagRevisionSchema(f, &flags.revisionSchema)
	f.BoolVar(&flags.dryRun, flagDryRun, false, "print SQL without executing it")
	addFlagLockTimeout(f, &flags.lockTimeout)
	f.StringVar(&flags.baseline, flagBaseline, "", "start the first migration after the given baseline version")
	f.StringVar(&flags.txMode, flagTxMode, txModeFile, "set transaction mode [none, file, all]")
	f.BoolVar(&flags.allowDirty, flagAllowDirty, false, "allow start working on a non-clean database")
	return cmd
}

// revisionsSchemaName follows the official precedence: flag, URL schema, default.
func revisionsSchemaName(c *sqlclient.Client, flag string) string {
	switch {
	case flag != "":
		return flag
	case c.URL.Schema != "":
		return c.URL.Schema
	default:
		return defaultRevisionsSchema
	}
}

func migrateApplyRun(cmd *cobra.Command, args []string, flags migrateApplyFlags) (rerr error) {
	ctx := cmd.Context()
	count := 0
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("cannot apply '%d' migration files", n)
		}
		count = n
	}
	switch flags.txMode {
	case txModeNone, txModeFile, txModeAll:
	default:
		return fmt.Errorf("unknown tx-mode %q", flags.txMode)
	}
	dir, err := openCheckedDir(cmd.OutOrStdout(), flags.dirURL, false)
	if err != nil {
		return err
	}
	client, err := openTarget(ctx, flags.url)
	if err != nil {
		return err
	}
	defer client.Close()
	unlock, err := client.Driver.Lock(ctx, applyLockName, flags.lockTimeout)
	if err != nil {
		return fmt.Errorf("acquiring database lock: %w", err)
	}
	defer func() {
		if err := unlock(); err != nil && rerr == nil {
			rerr = err
		}
	}()
	revSchema := revisionsSchemaName(client, flags.revisionSchema)
	rrw := NewRevisions(client.DB, revSchema)
	if !flags.dryRun {
		if err := rrw.Migrate(ctx); err != nil {
			return err
		}
	} else if ok, err := rrw.Exists(ctx); err != nil {
		return err
	} else if !ok {
		// Dry run on a database never migrated: nothing recorded yet.
		rrw = nil
	}
	var readRRW migrate.RevisionReadWriter = migrate.NopRevisionReadWriter{}
	if rrw != nil {
		readRRW = rrw
	}
	report := &applyReport{Start: time.Now()}
	opts := []migrate.ExecutorOption{
		migrate.WithOperatorVersion(operatorVersion),
		migrate.WithLogger(report),
	}
	if flags.allowDirty {
		opts = append(opts, migrate.WithAllowDirty(true))
	}
	if flags.baseline != "" {
		opts = append(opts, migrate.WithBaselineVersion(flags.baseline))
	}
	var pendingDrv migrate.Driver = client.Driver
	var pendingRRW = readRRW
	if flags.dryRun {
		pendingDrv, pendingRRW = &dryRunDriver{client.Driver}, &dryRunRevisions{readRRW}
	}
	ex, err := migrate.NewExecutor(pendingDrv, dir, pendingRRW, opts...)
	if err != nil {
		return err
	}
	applied, err := readRRW.ReadRevisions(ctx)
	if err != nil {
		return err
	}
	note, err := aheadNote(dir, flags.dirURL, applied)
	if err != nil {
		return err
	}
	if note != "" {
		cmd.Println(note)
	}
	pending, err := ex.Pending(ctx)
	if err != nil && !errors.Is(err, migrate.ErrNoPendingFiles) {
		return err
	}
	noPending := errors.Is(err, migrate.ErrNoPendingFiles)
	if noPending {
		migrate.LogNoPendingFiles(report, applied)
		return report.print(cmd.OutOrStdout())
	}
	if count == 0 || count >= len(pending) {
		count = len(pending)
	}
	pending = pending[:count]
	migrate.LogIntro(report, applied, pending)
	mux := &txMux{dryRun: flags.dryRun, mode: flags.txMode, schema: revSchema, c: client, rrw: readRRW}
	for _, f := range pending {
		var (
			drv migrate.Driver
			frw migrate.RevisionReadWriter
		)
		if drv, frw, err = mux.driverFor(ctx, f); err != nil {
			break
		}
		if ex, err = migrate.NewExecutor(drv, dir, frw, opts...); err != nil {
			err = fmt.Errorf("unexpected executor creation error: %w", err)
			break
		}
		if err = mux.mayRollback(ex.Execute(ctx, f)); err != nil {
			break
		}
		if err = mux.mayCommit(); err != nil {
			break
		}
	}
	if err == nil {
		if err = mux.commit(); err == nil {
			report.Log(migrate.LogDone{})
		}
	} else {
		_ = mux.mayRollback(err)
	}
	if err != nil {
		report.Error = err.Error()
	}
	return errors.Join(err, report.print(cmd.OutOrStdout()))
}

// txMux hands out the driver and revisions writer per file according to the tx mode.
type txMux struct {
	dryRun bool
	mode   string
	schema string
	c      *sqlclient.Client
	rrw    migrate.RevisionReadWriter
	tx     *sqlclient.TxClient
	txrrw  migrate.RevisionReadWriter
}

func (t *txMux) driverFor(ctx context.Context, f migrate.File) (migrate.Driver, migrate.RevisionReadWriter, error) {
	if t.dryRun {
		return &dryRunDriver{t.c.Driver}, &dryRunRevisions{t.rrw}, nil
	}
	mode, err := t.modeFor(f)
	if err != nil {
		return nil, nil, err
	}
	switch mode {
	case txModeNone:
		return t.c.Driver, t.rrw, nil
	case txModeFile:
		if t.tx != nil {
			return nil, nil, errors.New("unexpected active transaction")
		}
		if t.tx, err = t.c.Tx(ctx, nil); err != nil {
			return nil, nil, err
		}
		t.txrrw = NewRevisions(t.tx.Tx, t.schema)
		return t.tx.Driver, t.txrrw, nil
	default: // all
		if t.tx == nil {
			if t.tx, err = t.c.Tx(ctx, nil); err != nil {
				return nil, nil, err
			}
			t.txrrw = NewRevisions(t.tx.Tx, t.schema)
		}
		return t.tx.Driver, t.txrrw, nil
	}
}

// modeFor honours the "-- atlas:txmode" file directive like the official CLI.
func (t *txMux) modeFor(f migrate.File) (string, error) {
	l, ok := f.(*migrate.LocalFile)
	if !ok {
		return t.mode, nil
	}
	switch ds := l.Directive("txmode"); {
	case len(ds) > 1:
		return "", fmt.Errorf("multiple txmode values found in file %q: %q", f.Name(), ds)
	case len(ds) == 0 || ds[0] == t.mode:
		return t.mode, nil
	case ds[0] == txModeAll:
		return "", fmt.Errorf("txmode %q is not allowed in file directive %q", txModeAll, f.Name())
	case ds[0] == txModeNone, ds[0] == txModeFile:
		if t.mode == txModeAll {
			return "", fmt.Errorf("cannot set txmode directive to %q in %q when txmode %q is set globally", ds[0], f.Name(), txModeAll)
		}
		return ds[0], nil
	default:
		return "", fmt.Errorf("unknown txmode %q found in file directive %q", ds[0], f.Name())
	}
}

func (t *txMux) mayRollback(err error) error {
	if t.tx != nil && err != nil {
		if err2 := t.tx.Rollback(); err2 != nil {
			err = fmt.Errorf("%v: %w", err2, err)
		}
		t.tx, t.txrrw = nil, nil
	}
	return err
}

func (t *txMux) mayCommit() error {
	if t.tx != nil && !t.dryRun && t.mode != txModeAll {
		return t.commit()
	}
	return nil
}

func (t *txMux) commit() error {
	if t.tx == nil {
		return nil
	}
	defer func() { t.tx, t.txrrw = nil, nil }()
	return t.tx.Commit()
}

type (
	dryRunDriver    struct{ migrate.Driver }
	dryRunRevisions struct{ migrate.RevisionReadWriter }
)

func (dryRunDriver) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return nil, nil
}

func (dryRunDriver) Lock(context.Context, string, time.Duration) (schema.UnlockFunc, error) {
	return func() error { return nil }, nil
}

func (dryRunDriver) CheckClean(context.Context, *migrate.TableIdent) error { return nil }

func (dryRunDriver) Snapshot(context.Context) (migrate.RestoreFunc, error) {
	return func(context.Context) error { return nil }, nil
}

func (dryRunRevisions) WriteRevision(context.Context, *migrate.Revision) error { return nil }

// ---------------------------------------------------------------- apply report

// applyReport collects the executor's log, like the official cmdlog.MigrateApply.
type applyReport struct {
	Pending []migrate.File
	Applied []*appliedFile
	Current string
	Target  string
	Start   time.Time
	End     time.Time
	Error   string
}

type appliedFile struct {
	migrate.File
	Start, End time.Time
	Skipped    int
	Applied    []string
	ErrStmt    string
	ErrText    string
}

// Log implements migrate.Logger.
func (a *applyReport) Log(e migrate.LogEntry) {
	switch e := e.(type) {
	case migrate.LogExecution:
		a.Current, a.Target, a.Pending = e.From, e.To, e.Files
	case migrate.LogFile:
		if l := len(a.Applied); l > 0 {
			a.Applied[l-1].End = time.Now()
		}
		a.Applied = append(a.Applied, &appliedFile{File: e.File, Start: time.Now(), Skipped: e.Skip})
	case migrate.LogStmt:
		if l := len(a.Applied); l > 0 {
			a.Applied[l-1].Applied = append(a.Applied[l-1].Applied, e.SQL)
		}
	case migrate.LogError:
		if l := len(a.Applied); l > 0 {
			f := a.Applied[l-1]
			f.End = time.Now()
			a.End = f.End
			f.ErrStmt, f.ErrText = e.SQL, e.Error.Error()
		}
	case migrate.LogDone:
		n := time.Now()
		if l := len(a.Applied); l > 0 {
			a.Applied[l-1].End = n
		}
		a.End = n
	}
}

// CountStmts returns the number of applied statements.
func (a *applyReport) CountStmts() (n int) {
	for _, f := range a.Applied {
		n += len(f.Applied)
	}
	return n
}

func dec(n int) int { return n - 1 }

// applyTemplate mirrors the official default `migrate apply` output (without colours).
var applyTemplate = template.Must(template.New("apply").Funcs(template.FuncMap{"dec": dec}).Parse(
	`{{- if not .Pending -}}
No migration files to execute
{{- else -}}
Migrating to version {{ .Target }}{{ with .Current }} from {{ . }}{{ end }} ({{ len .Pending }} migrations in total):
{{ range $i, $f := .Applied }}
  -- migrating version {{ $f.File.Version }}{{ range $f.Applied }}
    -> {{ . }}{{ end }}
  {{- if .ErrText }}
    {{ .ErrText }}
  {{- else }}
  -- ok ({{ (.End.Sub .Start).String }})
  {{- end }}
{{ end }}
  -------------------------
  -- {{ .End.Sub .Start }}
{{- $files := len .Applied }}
{{- $stmts := .CountStmts }}
{{- if .Error }}
  -- {{ dec $files }} migrations ok (1 with errors)
  -- {{ dec $stmts }} sql statements ok (1 with errors)
{{- else }}
  -- {{ len .Applied }} migrations
  -- {{ .CountStmts }} sql statements
{{- end }}
{{- end }}
`))

func (a *applyReport) print(w io.Writer) error {
	if a.End.IsZero() {
		a.End = time.Now()
	}
	return applyTemplate.Execute(w, a)
}
