package main

// migrate hash: rewrite atlas.sum.

import (
	"ariga.io/atlas/sql/migrate"
	"github.com/spf13/cobra"
)

func migrateHashCmd(g *globalFlags) *cobra.Command {
	var dirURL string
	cmd := &cobra.Command{
		Use:     "hash [flags]",
		Short:   "Hash (re-)creates an integrity hash file for the migration directory.",
		Args:    cobra.NoArgs,
		PreRunE: envPreRun(g, nil),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := openDir(dirURL, false)
			if err != nil {
				return err
			}
			sum, err := dir.Checksum()
			if err != nil {
				return err
			}
			return migrate.WriteSumFile(dir, sum)
		},
	}
	addFlagDirURL(cmd.Flags(), &dirURL)
	return cmd
}
