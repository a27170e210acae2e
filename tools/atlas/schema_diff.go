package main

import (
	"context"
	"errors"
	"fmt"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlclient"
	"github.com/spf13/cobra"
)

func schemaCmd() *cobra.Command {
	g := &globalFlags{}
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Work with atlas schemas.",
	}
	addGlobalFlags(cmd.PersistentFlags(), g)
	cmd.AddCommand(schemaDiffCmd(g))
	return cmd
}

type schemaDiffFlags struct {
	from, to []string
	devURL   string
	schemas  []string
	exclude  []string
}

func schemaDiffCmd(g *globalFlags) *cobra.Command {
	var flags schemaDiffFlags
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Calculate and print the diff between two schemas.",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			e, err := selectEnv(g)
			if err != nil {
				return err
			}
			if e != nil {
				if err := maySetFlag(cmd, flagDevURL, e.DevURL); err != nil {
					return err
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(flags.from) == 0 || len(flags.to) == 0 {
				return errors.New(`required flags "from" and "to" must be set`)
			}
			return schemaDiffRun(cmd, flags)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&flags.from, flagFrom, "", nil, "[driver://username:password@address/dbname?param=value] select a resource using the URL format")
	f.StringSliceVarP(&flags.to, flagTo, "", nil, "[driver://username:password@address/dbname?param=value] select a resource using the URL format")
	addFlagDevURL(f, &flags.devURL)
	f.StringSliceVarP(&flags.schemas, flagSchema, "s", nil, "set schema names")
	f.StringSliceVar(&flags.exclude, flagExclude, nil, "list of glob patterns used to filter resources from applying")
	return cmd
}

// schemaState is a loaded side of the diff.
type schemaState struct {
	realm  *schema.Realm
	schema string // connected schema (search_path), if any
}

func loadSchemaState(ctx context.Context, urls []string, dev *sqlclient.Client, flags schemaDiffFlags) (*schemaState, *sqlclient.Client, error) {
	dir, db, err := desiredSource(urls)
	if err != nil {
		return nil, nil, err
	}
	if dir != nil {
		if dev == nil {
			return nil, nil, errors.New("--dev-url cannot be empty when a SQL file is used as a schema")
		}
		r, err := replayState(ctx, dev, dir, flags.schemas, flags.exclude)
		if err != nil {
			return nil, nil, fmt.Errorf("loading SQL schema on the dev database: %w", err)
		}
		return &schemaState{realm: r, schema: dev.URL.Schema}, nil, nil
	}
	c, err := openClient(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	r, err := connState(c, flags.schemas, flags.exclude).ReadState(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return &schemaState{realm: r, schema: c.URL.Schema}, c, nil
}

func schemaDiffRun(cmd *cobra.Command, flags schemaDiffFlags) error {
	ctx := cmd.Context()
	var dev *sqlclient.Client
	if flags.devURL != "" {
		c, err := openClient(ctx, flags.devURL)
		if err != nil {
			return err
		}
		defer c.Close()
		dev = c
	}
	from, fc, err := loadSchemaState(ctx, flags.from, dev, flags)
	if err != nil {
		return err
	}
	if fc != nil {
		defer fc.Close()
	}
	to, tc, err := loadSchemaState(ctx, flags.to, dev, flags)
	if err != nil {
		return err
	}
	if tc != nil {
		defer tc.Close()
	}
	differ := dev
	if differ == nil {
		differ = tc
	}
	var changes []schema.Change
	switch {
	case from.schema == "" && to.schema == "":
		changes, err = differ.Driver.RealmDiff(from.realm, to.realm)
	case from.schema == "" || to.schema == "":
		return fmt.Errorf("cannot diff a schema with a database connection: %q <> %q", from.schema, to.schema)
	default:
		if len(from.realm.Schemas) != 1 || len(to.realm.Schemas) != 1 {
			return errors.New("expected exactly one schema on each side")
		}
		s1, s2 := *from.realm.Schemas[0], *to.realm.Schemas[0]
		s1.Name, s2.Name = "", ""
		changes, err = differ.Driver.SchemaDiff(&s1, &s2)
	}
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		cmd.Println("Schemas are synced, no changes to be made.")
		return nil
	}
	if err := checkEnumChanges(changes); err != nil {
		return err
	}
	plan, err := differ.Driver.PlanChanges(ctx, "plan", changes, func(o *migrate.PlanOptions) {
		o.Mode = migrate.PlanModeDump
		if differ.URL.Schema != "" {
			o.SchemaQualifier = new(string)
		}
	})
	if err != nil {
		return err
	}
	if len(plan.Changes) == 0 {
		// Never let a real difference print as nothing.
		return fmt.Errorf("the schemas differ (%d changes) but the engine planned no statements for them", len(changes))
	}
	files, err := migrate.DefaultFormatter.Format(plan)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return fmt.Errorf("unexpected number of files: %d", len(files))
	}
	cmd.Print(string(files[0].Bytes()))
	return nil
}
