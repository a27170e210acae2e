// Command atlas-engine is identity-store's stand-in for the Atlas CLI, built on the
// Atlas engine library (ariga.io/atlas) whose PostgreSQL driver supports PG 13–18.
// It implements the subset of `atlas` this project uses, with the official names,
// flags, project file (atlas.hcl), migration file naming, atlas.sum format and
// revisions table, so its output interoperates with the official CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// EngineVersion is the version of the Atlas engine library this binary is built on.
const EngineVersion = "v0.32.1-0.20250325101103-175b25e1c1b9"

// operatorVersion is written to the revisions table (operator_version), where the
// official CLI writes "Atlas CLI <version>".
const operatorVersion = "atlas-engine " + EngineVersion

// exitError carries an exit code without an extra message (already printed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the CLI with the given arguments and streams and returns the exit code.
// Like the official CLI, reports and hints go to stdout and "Error: ..." to stderr.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", redactError(err))
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "atlas-engine",
		Short:         "identity-store's Atlas-compatible migration tool (Atlas engine library " + EngineVersion + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(os.Stdout)
	root.AddCommand(versionCmd(), migrateCmd(), schemaCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Prints this binary's version.",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			// One write: `atlas version | head -n 1` must not die of SIGPIPE when head
			// exits before a second write (issue 7 item 1; 1 run in 20 failed).
			cmd.Print("atlas-engine version " + EngineVersion + " (identity-store build; Atlas engine library)\n" +
				"This is NOT the official Atlas CLI: it implements only the migrate diff/apply/status/validate/hash/lint and schema diff commands identity-store uses.\n")
		},
	}
}
