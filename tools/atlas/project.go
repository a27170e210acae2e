package main

// Loading of the Atlas project file (atlas.hcl): the subset this project uses.
//
//	variable "NAME" { type = string  default = getenv("X") }
//	env "NAME" {
//	  src = "file://schema.sql"          (string or list of strings)
//	  url = var.url
//	  dev = var.dev_url
//	  schemas = [...] / exclude = [...]
//	  migration { dir = "file://migrations"  revisions_schema = "..."  baseline = "..."  lock_timeout = "10s" }
//	  lint { latest = N  destructive { error = true } }
//	}
//
// Unknown attributes and blocks are rejected so a typo does not silently change a deploy.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"ariga.io/atlas/schemahcl"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

type (
	// Project is a parsed project file.
	Project struct {
		Envs []*Env
	}

	// Env is one env block, fully evaluated.
	Env struct {
		Name      string
		Src       []string
		URL       string
		DevURL    string
		Schemas   []string
		Exclude   []string
		Migration MigrationConfig
		Lint      LintConfig
	}

	// MigrationConfig is the migration block.
	MigrationConfig struct {
		Dir             string
		RevisionsSchema string
		Baseline        string
		LockTimeout     string
	}

	// LintConfig is the lint block.
	LintConfig struct {
		Latest int
		// Analyzers holds the analyzer configuration blocks (destructive, ...)
		// in the form the engine's sqlcheck analyzers read.
		Analyzers *schemahcl.Resource
	}
)

// projectFuncs are the functions available in the project file.
func projectFuncs() map[string]function.Function {
	return map[string]function.Function{
		"getenv": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "key", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(os.Getenv(args[0].AsString())), nil
			},
		}),
		"format": stdlib.FormatFunc,
		"join":   stdlib.JoinFunc,
		"lower":  stdlib.LowerFunc,
		"upper":  stdlib.UpperFunc,
	}
}

// LoadProject parses the project file at path. vars are the --var overrides.
func LoadProject(path string, vars map[string][]string) (*Project, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseProject(src, path, vars)
}

// ParseProject parses project file content.
func ParseProject(src []byte, filename string, vars map[string][]string) (*Project, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, diags
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Attributes) > 0 {
		for name := range body.Attributes {
			return nil, fmt.Errorf("%s: unexpected top-level attribute %q", filename, name)
		}
	}
	base := &hcl.EvalContext{Functions: projectFuncs()}
	values := make(map[string]cty.Value)
	declared := make(map[string]bool)
	for _, blk := range body.Blocks {
		if blk.Type != "variable" {
			continue
		}
		if len(blk.Labels) != 1 {
			return nil, fmt.Errorf("%s: variable block needs exactly one label", blk.Range())
		}
		name := blk.Labels[0]
		if declared[name] {
			return nil, fmt.Errorf("%s: variable %q declared twice", blk.Range(), name)
		}
		declared[name] = true
		typ := cty.DynamicPseudoType
		for an, attr := range blk.Body.Attributes {
			switch an {
			case "type":
				t, diags := typeexpr.TypeConstraint(attr.Expr)
				if diags.HasErrors() {
					return nil, diags
				}
				typ = t
			case "default":
				v, diags := attr.Expr.Value(base)
				if diags.HasErrors() {
					return nil, diags
				}
				values[name] = v
			case "description":
			default:
				return nil, fmt.Errorf("%s: unexpected attribute %q in variable %q", attr.Range(), an, name)
			}
		}
		if len(blk.Body.Blocks) > 0 {
			return nil, fmt.Errorf("%s: unexpected block in variable %q", blk.Range(), name)
		}
		if ss, ok := vars[name]; ok {
			v, err := varValue(typ, ss)
			if err != nil {
				return nil, fmt.Errorf("--var %s: %w", name, err)
			}
			values[name] = v
		} else if v, ok := values[name]; ok && typ != cty.DynamicPseudoType {
			cv, err := convert.Convert(v, typ)
			if err != nil {
				return nil, fmt.Errorf("%s: the default of variable %q is not a %s", blk.Range(), name, typ.FriendlyName())
			}
			values[name] = cv
		}
		if _, ok := values[name]; !ok {
			return nil, fmt.Errorf("missing value for required variable %q (use --var %s=...)", name, name)
		}
	}
	for name := range vars {
		if !declared[name] {
			return nil, fmt.Errorf("--var %s: no variable %q is declared in %s", name, name, filename)
		}
	}
	ctx := base.NewChild()
	ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(values)}
	if len(values) == 0 {
		ctx.Variables["var"] = cty.EmptyObjectVal
	}
	p := &Project{}
	seen := make(map[string]bool)
	for _, blk := range body.Blocks {
		switch blk.Type {
		case "variable":
			continue
		case "env":
		default:
			return nil, fmt.Errorf("%s: unsupported block %q (atlas-engine supports variable and env)", blk.Range(), blk.Type)
		}
		if len(blk.Labels) != 1 {
			return nil, fmt.Errorf("%s: env block needs exactly one label", blk.Range())
		}
		e, err := parseEnv(ctx, blk)
		if err != nil {
			return nil, err
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%s: env %q declared twice", blk.Range(), e.Name)
		}
		seen[e.Name] = true
		p.Envs = append(p.Envs, e)
	}
	return p, nil
}

// varValue converts --var values to the variable's type: one value is a string, more
// (the name given several times) a list of strings, as the official CLI builds them;
// then the declared type (string, number, bool, list(...)) converts it.
func varValue(typ cty.Type, ss []string) (cty.Value, error) {
	var v cty.Value
	if len(ss) == 1 && !typ.IsListType() && !typ.IsSetType() {
		v = cty.StringVal(ss[0])
	} else {
		vs := make([]cty.Value, len(ss))
		for i, s := range ss {
			vs[i] = cty.StringVal(s)
		}
		v = cty.ListVal(vs)
	}
	if typ == cty.DynamicPseudoType {
		return v, nil
	}
	cv, err := convert.Convert(v, typ)
	if err != nil {
		// The value is not shown: it may be a secret.
		return cty.NilVal, fmt.Errorf("%d value(s) given, which is not a valid %s", len(ss), typ.FriendlyName())
	}
	return cv, nil
}

func parseEnv(ctx *hcl.EvalContext, blk *hclsyntax.Block) (*Env, error) {
	e := &Env{Name: blk.Labels[0]}
	for _, name := range sortedAttrs(blk.Body) {
		attr := blk.Body.Attributes[name]
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		var err error
		switch name {
		case "src":
			e.Src, err = stringOrList(v)
		case "url":
			e.URL, err = asString(v)
		case "dev":
			e.DevURL, err = asString(v)
		case "schemas":
			e.Schemas, err = stringOrList(v)
		case "exclude":
			e.Exclude, err = stringOrList(v)
		case "name":
		default:
			return nil, fmt.Errorf("%s: unsupported attribute %q in env %q", attr.Range(), name, e.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: env %q attribute %q: %w", attr.Range(), e.Name, name, err)
		}
	}
	for _, b := range blk.Body.Blocks {
		switch b.Type {
		case "migration":
			for _, name := range sortedAttrs(b.Body) {
				attr := b.Body.Attributes[name]
				v, diags := attr.Expr.Value(ctx)
				if diags.HasErrors() {
					return nil, diags
				}
				s, err := asString(v)
				if err != nil {
					return nil, fmt.Errorf("%s: migration attribute %q: %w", attr.Range(), name, err)
				}
				switch name {
				case "dir":
					e.Migration.Dir = s
				case "revisions_schema":
					e.Migration.RevisionsSchema = s
				case "baseline":
					e.Migration.Baseline = s
				case "lock_timeout":
					e.Migration.LockTimeout = s
				case "format":
					if s != "" && s != "atlas" {
						return nil, fmt.Errorf("%s: only the atlas migration directory format is supported", attr.Range())
					}
				default:
					return nil, fmt.Errorf("%s: unsupported migration attribute %q", attr.Range(), name)
				}
			}
			if len(b.Body.Blocks) > 0 {
				return nil, fmt.Errorf("%s: unexpected block in migration", b.Range())
			}
		case "lint":
			r, err := toResource(ctx, b)
			if err != nil {
				return nil, err
			}
			var keep []*schemahcl.Attr
			for _, a := range r.Attrs {
				switch a.K {
				case "latest":
					if a.V.Type() != cty.Number {
						return nil, fmt.Errorf("%s: lint.latest must be a number", b.Range())
					}
					bf := a.V.AsBigFloat()
					n, _ := bf.Int64()
					e.Lint.Latest = int(n)
				default:
					keep = append(keep, a)
				}
			}
			r.Attrs = keep
			e.Lint.Analyzers = r
		default:
			return nil, fmt.Errorf("%s: unsupported block %q in env %q", b.Range(), b.Type, e.Name)
		}
	}
	return e, nil
}

// toResource converts a block (recursively) into the engine's schemahcl.Resource,
// which is what the sqlcheck analyzers read their options from.
func toResource(ctx *hcl.EvalContext, b *hclsyntax.Block) (*schemahcl.Resource, error) {
	r := &schemahcl.Resource{Type: b.Type}
	if len(b.Labels) > 0 {
		r.Name = b.Labels[0]
	}
	for _, name := range sortedAttrs(b.Body) {
		v, diags := b.Body.Attributes[name].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		r.Attrs = append(r.Attrs, &schemahcl.Attr{K: name, V: v})
	}
	for _, c := range b.Body.Blocks {
		cr, err := toResource(ctx, c)
		if err != nil {
			return nil, err
		}
		r.Children = append(r.Children, cr)
	}
	return r, nil
}

func sortedAttrs(b *hclsyntax.Body) []string {
	names := make([]string, 0, len(b.Attributes))
	for n := range b.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func asString(v cty.Value) (string, error) {
	if v.IsNull() {
		return "", nil
	}
	if v.Type() != cty.String {
		return "", fmt.Errorf("expected a string, got %s", v.Type().FriendlyName())
	}
	return v.AsString(), nil
}

func stringOrList(v cty.Value) ([]string, error) {
	if v.IsNull() {
		return nil, nil
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, nil
	}
	if !v.Type().IsListType() && !v.Type().IsTupleType() && !v.Type().IsSetType() {
		return nil, fmt.Errorf("expected a string or a list of strings, got %s", v.Type().FriendlyName())
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		s, err := asString(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Env returns the env with the given name.
func (p *Project) Env(name string) (*Env, error) {
	var names []string
	for _, e := range p.Envs {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	return nil, fmt.Errorf("env %q not defined in project file (defined: %s)", name, strings.Join(names, ", "))
}
