package main

// migrate diff: plan the difference between the migration directory and the desired
// state into a new migration file.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"github.com/spf13/cobra"
)

type migrateDiffFlags struct {
	to          []string
	devURL      string
	dirURL      string
	schemas     []string
	exclude     []string
	lockTimeout time.Duration
	qualifier   string
}

func migrateDiffCmd(g *globalFlags) *cobra.Command {
	var flags migrateDiffFlags
	cmd := &cobra.Command{
		Use:     "diff [flags] [name]",
		Short:   "Compute the diff between the migration directory and a desired state and create a new migration file.",
		Args:    cobra.MaximumNArgs(1),
		PreRunE: envPreRun(g, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(flags.to) == 0 {
				return errors.New(`required flag "to" not set`)
			}
			if flags.devURL == "" {
				return errors.New(`required flag "dev-url" not set`)
			}
			return migrateDiffRun(cmd, args, flags)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&flags.to, flagTo, nil, "[driver://username:password@address/dbname?param=value] select a desired state using the URL format")
	addFlagDevURL(f, &flags.devURL)
	addFlagDirURL(f, &flags.dirURL)
	f.StringSliceVarP(&flags.schemas, flagSchema, "s", nil, "set schema names")
	f.StringSliceVar(&flags.exclude, flagExclude, nil, "list of glob patterns used to filter resources from applying")
	addFlagLockTimeout(f, &flags.lockTimeout)
	f.StringVar(&flags.qualifier, flagQualifier, "", "qualify tables with custom qualifier when working on a single schema")
	return cmd
}

func migrateDiffRun(cmd *cobra.Command, args []string, flags migrateDiffFlags) error {
	ctx := cmd.Context()
	dir, err := openCheckedDir(cmd.OutOrStdout(), flags.dirURL, true)
	if err != nil {
		return err
	}
	var name string
	if len(args) > 0 {
		name = args[0]
	}
	desiredDir, desiredDB, err := desiredSource(flags.to)
	if err != nil {
		return err
	}
	dev, err := openClient(ctx, flags.devURL)
	if err != nil {
		return err
	}
	defer dev.Close()
	unlock, err := dev.Driver.Lock(ctx, diffLockName, flags.lockTimeout)
	if err != nil {
		return fmt.Errorf("acquiring database lock: %w", err)
	}
	defer unlock()
	var desired migrate.StateReader
	switch {
	case desiredDir != nil:
		desired = migrate.StateReaderFunc(func(ctx context.Context) (*schema.Realm, error) {
			r, err := replayState(ctx, dev, desiredDir, flags.schemas, flags.exclude)
			if err != nil {
				return nil, fmt.Errorf("loading the desired state on the dev database: %w", err)
			}
			return r, nil
		})
	default:
		c, err := openClient(ctx, desiredDB)
		if err != nil {
			return err
		}
		defer c.Close()
		desired = connState(c, flags.schemas, flags.exclude)
	}
	opts := []migrate.PlannerOption{migrate.PlanFormat(migrate.DefaultFormatter)}
	if len(flags.exclude) > 0 {
		opts = append(opts, migrate.PlanWithExclude(flags.exclude...))
	}
	if dev.URL.Schema != "" {
		opts = append(opts, migrate.PlanWithSchemaQualifier(flags.qualifier))
	}
	pl := migrate.NewPlanner(checkedDriver{dev.Driver}, dir, opts...)
	var plan *migrate.Plan
	if dev.URL.Schema != "" {
		plan, err = pl.PlanSchema(ctx, name, desired)
	} else {
		plan, err = pl.Plan(ctx, name, desired)
	}
	var cerr *migrate.NotCleanError
	switch {
	case errors.Is(err, migrate.ErrNoPlan):
		cmd.Println("The migration directory is synced with the desired state, no changes to be made")
		return nil
	case errors.As(err, &cerr):
		return fmt.Errorf("dev database is not clean (%s): point --dev-url at an empty database", cerr.Reason)
	case err != nil:
		return err
	}
	files, err := dir.Files()
	if err != nil {
		return err
	}
	if plan.Version, err = nextVersion(files, clock()); err != nil {
		return err
	}
	// Like the official CLI, a successful diff prints nothing.
	return pl.WritePlan(plan)
}

// clock is the time source of migrate diff (a variable so tests can stop time).
var clock = time.Now

// versionLayout is the official version format: the UTC time of the diff, to the second.
const versionLayout = "20060102150405"

// nextVersion returns the version of a new migration file: the current UTC time, or
// one second after the newest version when that is not smaller. Two diffs within one
// second would otherwise write the same version, and files with equal versions replay
// in name order, not in the order they were written. Versions are ordered as strings
// (the directory sorts file names), so a newest version that is not a timestamp and
// sorts after the current time cannot be followed automatically.
func nextVersion(files []migrate.File, now time.Time) (string, error) {
	v := now.UTC().Format(versionLayout)
	newest := ""
	for _, f := range files {
		newest = max(newest, f.Version())
	}
	if v > newest {
		return v, nil
	}
	t, err := time.Parse(versionLayout, newest)
	if err != nil {
		return "", fmt.Errorf("the newest migration version %q sorts after the current time %s and is not a timestamp (yyyymmddhhmmss): cannot choose a greater version", newest, v)
	}
	return t.Add(time.Second).Format(versionLayout), nil
}

// desiredSource splits the --to URLs: SQL files (replayed on dev) or one database URL.
func desiredSource(to []string) (migrate.Dir, string, error) {
	var files, dbs []string
	for _, u := range to {
		switch {
		case strings.HasPrefix(u, "file://"):
			files = append(files, u)
		case strings.Contains(u, "://"):
			dbs = append(dbs, u)
		default:
			if strings.ContainsAny(u, "@:") {
				// Possibly a database URL without its scheme: never echo it (password).
				return nil, "", errors.New("missing scheme in a --to value (not shown: it may hold a password). Use file:// for SQL files, postgres:// for a database")
			}
			return nil, "", fmt.Errorf("missing scheme in %q. Did you mean file://%s?", u, u)
		}
	}
	switch {
	case len(files) > 0 && len(dbs) > 0:
		return nil, "", errors.New("the desired state must be provided from a single kind of source")
	case len(dbs) > 1:
		return nil, "", errors.New("only one database URL is supported as the desired state")
	case len(dbs) == 1:
		return nil, dbs[0], nil
	}
	d, err := sqlSourceDir(files)
	return d, "", err
}
