package main

// migrate validate: checksum, then a replay on the dev database when one is given.

import (
	"fmt"

	"github.com/spf13/cobra"
)

func migrateValidateCmd(g *globalFlags) *cobra.Command {
	var devURL, dirURL string
	cmd := &cobra.Command{
		Use:     "validate [flags]",
		Short:   "Validates the migration directories checksum and SQL statements.",
		Args:    cobra.NoArgs,
		PreRunE: envPreRun(g, nil),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := openCheckedDir(cmd.OutOrStdout(), dirURL, false)
			if err != nil {
				return err
			}
			if devURL == "" {
				return nil
			}
			dev, err := openClient(cmd.Context(), devURL)
			if err != nil {
				return err
			}
			defer dev.Close()
			if _, err := replayState(cmd.Context(), dev, dir, nil, nil); err != nil {
				return fmt.Errorf("replaying the migration directory: %w", err)
			}
			return nil
		},
	}
	addFlagDevURL(cmd.Flags(), &devURL)
	addFlagDirURL(cmd.Flags(), &dirURL)
	return cmd
}
