package main

// migrate: the command group, and the env handling and lock names its commands share.

import (
	"github.com/spf13/cobra"
)

// Lock names used by the official CLI (fnv32 of the name, pg_advisory_lock).
const (
	applyLockName = "atlas_migrate_execute"
	diffLockName  = "atlas_migrate_diff"
)

func migrateCmd() *cobra.Command {
	g := &globalFlags{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage versioned migration files",
	}
	addGlobalFlags(cmd.PersistentFlags(), g)
	cmd.AddCommand(
		migrateDiffCmd(g),
		migrateApplyCmd(g),
		migrateStatusCmd(g),
		migrateValidateCmd(g),
		migrateHashCmd(g),
		migrateLintCmd(g),
	)
	return cmd
}

// envPreRun returns a PreRunE that fills flags from the selected env, and stores
// that env in *env when the command needs more of it than its flags (env may be nil).
func envPreRun(g *globalFlags, env **Env) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		e, err := selectEnv(g)
		if err != nil {
			return err
		}
		if env != nil {
			*env = e
		}
		return applyEnv(cmd, e)
	}
}
