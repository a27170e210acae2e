package main

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag names, as the official CLI spells them.
const (
	flagEnv            = "env"
	flagConfig         = "config"
	flagVar            = "var"
	flagURL            = "url"
	flagDevURL         = "dev-url"
	flagDirURL         = "dir"
	flagTo             = "to"
	flagFrom           = "from"
	flagSchema         = "schema"
	flagExclude        = "exclude"
	flagRevisionSchema = "revisions-schema"
	flagLockTimeout    = "lock-timeout"
	flagBaseline       = "baseline"
	flagAllowDirty     = "allow-dirty"
	flagTxMode         = "tx-mode"
	flagDryRun         = "dry-run"
	flagLatest         = "latest"
	flagQualifier      = "qualifier"
)

// globalFlags are the flags shared by all migrate/schema commands.
type globalFlags struct {
	env    string
	config string
	vars   []string
}

func addGlobalFlags(f *pflag.FlagSet, g *globalFlags) {
	f.StringVar(&g.env, flagEnv, "", "set which env from the config file to use")
	f.StringVarP(&g.config, flagConfig, "c", "file://atlas.hcl", "select config (project) file using URL format")
	f.StringArrayVar(&g.vars, flagVar, nil, "input variables (name=value), repeatable")
}

// parseVars reads --var flags as the official CLI does (v0.13.1 cmdapi.Vars.Set): each
// flag value is one CSV record of name=value fields, so `--var "url=..."` with literal
// quotes and `--var "a=1,b=2"` both work, and a value holding a comma must be quoted
// (`--var '"dsn=a,b"'`). A name given more than once becomes a list. Values never
// appear in error messages: they are often database URLs with passwords.
func parseVars(vs []string) (map[string][]string, error) {
	m := make(map[string][]string, len(vs))
	for n, v := range vs {
		r := csv.NewReader(strings.NewReader(v))
		r.LazyQuotes = false
		fields, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("--var #%d is not a valid CSV record of name=value fields (quote a value containing commas or quotes)", n+1)
		}
		for i, kv := range fields {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--var #%d: field %d is not name=value (variables must be formatted as key=value; quote a value containing commas: --var '\"name=a,b\"')", n+1, i+1)
			}
			m[k] = append(m[k], val)
		}
	}
	return m, nil
}

// selectEnv loads the project file and returns the selected env, or nil when --env is not set.
func selectEnv(g *globalFlags) (*Env, error) {
	if g.env == "" {
		return nil, nil
	}
	u, err := url.Parse(g.config)
	if err != nil {
		return nil, fmt.Errorf("parsing --config: %w", err)
	}
	if u.Scheme != "file" {
		return nil, fmt.Errorf("--config: only file:// URLs are supported, got %q", g.config)
	}
	path := filepath.Join(u.Host, u.Path)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("config file %q: %w", path, err)
	}
	vars, err := parseVars(g.vars)
	if err != nil {
		return nil, err
	}
	p, err := LoadProject(path, vars)
	if err != nil {
		return nil, err
	}
	return p.Env(g.env)
}

// maySetFlag sets the flag from the env value unless the user set it on the command line.
func maySetFlag(cmd *cobra.Command, name, value string) error {
	f := cmd.Flags().Lookup(name)
	if f == nil || value == "" || f.Changed {
		return nil
	}
	return cmd.Flags().Set(name, value)
}

// applyEnv fills unset flags from the env block, like the official CLI.
func applyEnv(cmd *cobra.Command, env *Env) error {
	if env == nil {
		return nil
	}
	set := []struct{ name, value string }{
		{flagURL, env.URL},
		{flagDevURL, env.DevURL},
		{flagDirURL, env.Migration.Dir},
		{flagBaseline, env.Migration.Baseline},
		{flagRevisionSchema, env.Migration.RevisionsSchema},
	}
	if cmd.Name() == "apply" || cmd.Name() == "diff" {
		set = append(set, struct{ name, value string }{flagLockTimeout, env.Migration.LockTimeout})
	}
	if cmd.Name() == "lint" && env.Lint.Latest > 0 {
		set = append(set, struct{ name, value string }{flagLatest, fmt.Sprint(env.Lint.Latest)})
	}
	for _, s := range set {
		if err := maySetFlag(cmd, s.name, s.value); err != nil {
			return err
		}
	}
	if len(env.Src) > 0 && cmd.Flags().Lookup(flagTo) != nil && !cmd.Flags().Changed(flagTo) {
		srcs := make([]string, len(env.Src))
		for i, s := range env.Src {
			if u, err := url.Parse(s); err == nil && u.Scheme != "" {
				srcs[i] = s
				continue
			}
			abs, err := filepath.Abs(s)
			if err != nil {
				return err
			}
			srcs[i] = "file://" + abs
		}
		if err := cmd.Flags().Set(flagTo, strings.Join(srcs, ",")); err != nil {
			return err
		}
	}
	if len(env.Schemas) > 0 {
		if err := maySetFlag(cmd, flagSchema, strings.Join(env.Schemas, ",")); err != nil {
			return err
		}
	}
	if len(env.Exclude) > 0 {
		if err := maySetFlag(cmd, flagExclude, strings.Join(env.Exclude, ",")); err != nil {
			return err
		}
	}
	return nil
}

func addFlagURL(f *pflag.FlagSet, p *string) {
	f.StringVarP(p, flagURL, "u", "", "[driver://username:password@address/dbname?param=value] select a resource using the URL format")
}

func addFlagDevURL(f *pflag.FlagSet, p *string) {
	f.StringVar(p, flagDevURL, "", "[driver://username:password@address/dbname?param=value] select a dev database using the URL format")
}

func addFlagDirURL(f *pflag.FlagSet, p *string) {
	f.StringVar(p, flagDirURL, "file://migrations", "select migration directory using URL format")
}

func addFlagRevisionSchema(f *pflag.FlagSet, p *string) {
	f.StringVar(p, flagRevisionSchema, "", "name of the schema the revisions table resides in")
}

func addFlagLockTimeout(f *pflag.FlagSet, p *time.Duration) {
	f.DurationVar(p, flagLockTimeout, 10*time.Second, "set how long to wait for the database lock")
}
