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
	"slices"
	"sort"
	"strconv"
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

// envSpec is an env block, decoded by the engine's schemahcl from these spec tags.
// Whatever the tags do not name lands in the embedded DefaultExtension: the lint block
// (kept as a resource for the analyzers), or a mistake, which is refused.
type envSpec struct {
	Src       cty.Value      `spec:"src"` // a string or a list of strings
	URL       string         `spec:"url"`
	Dev       string         `spec:"dev"`
	Schemas   cty.Value      `spec:"schemas"`
	Exclude   cty.Value      `spec:"exclude"`
	EnvName   string         `spec:"name"` // accepted (the official CLI allows it), unused
	Migration *migrationSpec `spec:"migration"`
	schemahcl.DefaultExtension
}

// migrationSpec is the migration block of an env.
type migrationSpec struct {
	Dir             string `spec:"dir"`
	RevisionsSchema string `spec:"revisions_schema"`
	Baseline        string `spec:"baseline"`
	LockTimeout     string `spec:"lock_timeout"`
	Format          string `spec:"format"`
	schemahcl.DefaultExtension
}

func parseEnv(ctx *hcl.EvalContext, blk *hclsyntax.Block) (*Env, error) {
	e := &Env{Name: blk.Labels[0]}
	seen := make(map[string]bool)
	for _, b := range blk.Body.Blocks {
		if seen[b.Type] {
			return nil, fmt.Errorf("%s: more than one %s block in env %q", b.Range(), b.Type, e.Name)
		}
		seen[b.Type] = true
	}
	r, err := toResource(ctx, blk)
	if err != nil {
		return nil, err
	}
	dropNullAttrs(r) // a null value means "not set", as before
	var spec envSpec
	if err := r.As(&spec); err != nil {
		return nil, fmt.Errorf("%s: env %q: %w", blk.Range(), e.Name, err)
	}
	if err := rejectRemain(blk, spec.Remain(), "env "+strconv.Quote(e.Name), "lint"); err != nil {
		return nil, err
	}
	e.URL, e.DevURL = spec.URL, spec.Dev
	for _, l := range []struct {
		name string
		v    cty.Value
		to   *[]string
	}{{"src", spec.Src, &e.Src}, {"schemas", spec.Schemas, &e.Schemas}, {"exclude", spec.Exclude, &e.Exclude}} {
		if *l.to, err = stringOrList(l.v); err != nil {
			return nil, fmt.Errorf("%s: env %q attribute %q: %w", attrRange(blk.Body, l.name), e.Name, l.name, err)
		}
	}
	if m := spec.Migration; m != nil {
		mb := childBlock(blk, "migration")
		if err := rejectRemain(mb, m.Remain(), "migration"); err != nil {
			return nil, err
		}
		if m.Format != "" && m.Format != "atlas" {
			return nil, fmt.Errorf("%s: only the atlas migration directory format is supported", attrRange(mb.Body, "format"))
		}
		e.Migration = MigrationConfig{Dir: m.Dir, RevisionsSchema: m.RevisionsSchema, Baseline: m.Baseline, LockTimeout: m.LockTimeout}
	}
	if lr, ok := spec.Remain().Resource("lint"); ok {
		var keep []*schemahcl.Attr
		for _, a := range lr.Attrs {
			if a.K != "latest" {
				keep = append(keep, a)
				continue
			}
			if a.V.Type() != cty.Number {
				return nil, fmt.Errorf("%s: lint.latest must be a number", childBlock(blk, "lint").Range())
			}
			n, _ := a.V.AsBigFloat().Int64()
			e.Lint.Latest = int(n)
		}
		lr.Attrs = keep
		e.Lint.Analyzers = lr
	}
	return e, nil
}

// rejectRemain refuses the attributes and blocks a spec struct did not take, except
// the block types listed in allowed, naming the first one with its position.
func rejectRemain(blk *hclsyntax.Block, rem *schemahcl.Resource, where string, allowed ...string) error {
	if rem == nil {
		return nil
	}
	for _, a := range rem.Attrs {
		return fmt.Errorf("%s: unsupported attribute %q in %s", attrRange(blk.Body, a.K), a.K, where)
	}
	for _, c := range rem.Children {
		if !slices.Contains(allowed, c.Type) {
			return fmt.Errorf("%s: unsupported block %q in %s", childBlock(blk, c.Type).Range(), c.Type, where)
		}
	}
	return nil
}

// dropNullAttrs removes attributes whose value is null, recursively.
func dropNullAttrs(r *schemahcl.Resource) {
	keep := r.Attrs[:0]
	for _, a := range r.Attrs {
		if !a.V.IsNull() {
			keep = append(keep, a)
		}
	}
	r.Attrs = keep
	for _, c := range r.Children {
		dropNullAttrs(c)
	}
}

// attrRange is the source position of an attribute (or of the body when absent).
func attrRange(b *hclsyntax.Body, name string) hcl.Range {
	if a, ok := b.Attributes[name]; ok {
		return a.Range()
	}
	return b.Range()
}

// childBlock returns the first nested block of the given type (or the block itself).
func childBlock(blk *hclsyntax.Block, typ string) *hclsyntax.Block {
	for _, b := range blk.Body.Blocks {
		if b.Type == typ {
			return b
		}
	}
	return blk
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
