package main

// migrate status: the official status report, plus a note when the database is ahead.

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"github.com/spf13/cobra"
)

type migrateStatusFlags struct {
	url            string
	dirURL         string
	revisionSchema string
}

func migrateStatusCmd(g *globalFlags) *cobra.Command {
	var flags migrateStatusFlags
	cmd := &cobra.Command{
		Use:     "status [flags]",
		Short:   "Get information about the current migration status.",
		Args:    cobra.NoArgs,
		PreRunE: envPreRun(g, nil),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrateStatusRun(cmd, flags)
		},
	}
	addFlagURL(cmd.Flags(), &flags.url)
	addFlagDirURL(cmd.Flags(), &flags.dirURL)
	addFlagRevisionSchema(cmd.Flags(), &flags.revisionSchema)
	return cmd
}

// statusReport mirrors the official cmdlog.MigrateStatus.
type statusReport struct {
	Available []migrate.File
	Pending   []migrate.File
	Applied   []*migrate.Revision
	Current   string
	Next      string
	Count     int
	Total     int
	Status    string
	Error     string
	SQL       string
}

func migrateStatusRun(cmd *cobra.Command, flags migrateStatusFlags) error {
	ctx := cmd.Context()
	dir, err := openCheckedDir(cmd.OutOrStdout(), flags.dirURL, false)
	if err != nil {
		return err
	}
	client, err := openTarget(ctx, flags.url)
	if err != nil {
		return err
	}
	defer client.Close()
	rep := &statusReport{}
	if rep.Available, err = dir.Files(); err != nil {
		return err
	}
	rep.Available = migrate.SkipCheckpointFiles(rep.Available)
	rrw := NewRevisions(client.DB, revisionsSchemaName(client, flags.revisionSchema))
	exists, err := rrw.Exists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		rep.Pending = rep.Available
	} else {
		ex, err := migrate.NewExecutor(client.Driver, dir, rrw)
		if err != nil {
			return err
		}
		rep.Pending, err = ex.Pending(ctx)
		if err != nil && !errors.Is(err, migrate.ErrNoPendingFiles) {
			return err
		}
		if rep.Applied, err = rrw.ReadRevisions(ctx); err != nil {
			return err
		}
	}
	switch {
	case len(rep.Pending) == len(rep.Available) || len(rep.Applied) == 0:
		rep.Current = "No migration applied yet"
	default:
		rep.Current = rep.Applied[len(rep.Applied)-1].Version
	}
	if len(rep.Pending) == 0 {
		rep.Status, rep.Next = "OK", "Already at latest version"
	} else {
		rep.Status, rep.Next = "PENDING", rep.Pending[0].Version()
	}
	if len(rep.Applied) > 0 {
		last := rep.Applied[len(rep.Applied)-1]
		if !last.Type.Has(migrate.RevisionTypeResolved) && last.Applied < last.Total {
			rep.SQL = strings.ReplaceAll(last.ErrorStmt, "\n", " ")
			rep.Error = strings.ReplaceAll(last.Error, "\n", " ")
			rep.Count = last.Applied
			idx := migrate.FilesLastIndex(rep.Available, func(f migrate.File) bool { return f.Version() == last.Version })
			if idx == -1 {
				return fmt.Errorf("migration file with version %q not found", last.Version)
			}
			stmts, err := rep.Available[idx].Stmts()
			if err != nil {
				return err
			}
			rep.Total = len(stmts)
		}
	}
	if err := printStatus(cmd.OutOrStdout(), rep); err != nil {
		return err
	}
	note, err := aheadNote(dir, flags.dirURL, rep.Applied)
	if err == nil && note != "" {
		cmd.Print("\n" + note)
	}
	return err
}

// printStatus writes the official default status layout (without colours).
func printStatus(w io.Writer, r *statusReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Migration Status: %s\n", r.Status)
	fmt.Fprintf(&b, "  -- Current Version: %s", r.Current)
	if r.Total > 0 {
		fmt.Fprintf(&b, " (%d statements applied)", r.Count)
	}
	fmt.Fprintf(&b, "\n  -- Next Version:    %s", r.Next)
	if r.Total > 0 {
		fmt.Fprintf(&b, " (%d statements left)", r.Total-r.Count)
	}
	fmt.Fprintf(&b, "\n  -- Executed Files:  %d", len(r.Applied))
	if r.Total > 0 {
		b.WriteString(" (last one partially)")
	}
	fmt.Fprintf(&b, "\n  -- Pending Files:   %d\n", len(r.Pending))
	if r.Total > 0 {
		fmt.Fprintf(&b, "\nLast migration attempt had errors:\n  -- SQL:   %s\n  -- ERROR: %s\n", r.SQL, r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
