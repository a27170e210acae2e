package main

// Reading migration statements, as the official CLI's PostgreSQL parser does for lint
// (v0.13.1 cmd/atlas/internal/sqlparse/pgparse): the dev database shows what changed
// after each statement, but not why. A renamed table looks like a dropped table plus a
// new one, a renamed column like a dropped column plus a new one. The statement text
// says which: `ALTER TABLE t RENAME TO u`, `ALTER TABLE t RENAME [COLUMN] a TO b`,
// `ALTER INDEX i RENAME TO j`. Likewise `UPDATE t SET a = ...` before
// `ALTER TABLE t ALTER COLUMN a SET NOT NULL` means the column was backfilled.
//
// This is a small PostgreSQL lexer plus recognisers for exactly those statement forms,
// not a full parser: anything it does not recognise is left to the dev-database diff,
// which errs on the side of reporting.

import (
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

type tokKind int

const (
	tokIdent  tokKind = iota // unquoted identifier or keyword, folded to lower case
	tokQIdent                // "quoted identifier", unquoted
	tokString                // any string constant (text not kept)
	tokNumber
	tokPunct // one punctuation or operator character
)

type token struct {
	kind tokKind
	text string
}

// is reports whether the token is the (unquoted) keyword kw, given in lower case.
func (t token) is(kw string) bool { return t.kind == tokIdent && t.text == kw }

// isName reports whether the token can be a name.
func (t token) isName() bool { return t.kind == tokIdent || t.kind == tokQIdent }

func isIdentStart(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c == '$' || (c >= '0' && c <= '9') }

// lexSQL splits one statement into tokens, skipping white space and comments.
// Unterminated quotes or comments end the token stream (the statement ran on the
// dev database already, so it is valid SQL; this only guards against surprises).
func lexSQL(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return toks
			}
			i += j + 1
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			depth, j := 1, i+2
			for j < len(s) && depth > 0 {
				switch {
				case strings.HasPrefix(s[j:], "/*"):
					depth, j = depth+1, j+2
				case strings.HasPrefix(s[j:], "*/"):
					depth, j = depth-1, j+2
				default:
					j++
				}
			}
			i = j
		case c == '\'':
			j, ok := endQuoted(s, i+1, '\'', false)
			if !ok {
				return toks
			}
			toks, i = append(toks, token{kind: tokString}), j
		case (c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'':
			j, ok := endQuoted(s, i+2, '\'', true)
			if !ok {
				return toks
			}
			toks, i = append(toks, token{kind: tokString}), j
		case c == '"':
			j, ok := endQuoted(s, i+1, '"', false)
			if !ok {
				return toks
			}
			toks, i = append(toks, token{kind: tokQIdent, text: strings.ReplaceAll(s[i+1:j-1], `""`, `"`)}), j
		case c == '$' && dollarTag(s[i:]) != "":
			tag := dollarTag(s[i:])
			j := strings.Index(s[i+len(tag):], tag)
			if j < 0 {
				return toks
			}
			toks, i = append(toks, token{kind: tokString}), i+len(tag)+j+len(tag)
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			toks, i = append(toks, token{kind: tokIdent, text: strings.ToLower(s[i:j])}), j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (isIdentChar(s[j]) || s[j] == '.') {
				j++
			}
			toks, i = append(toks, token{kind: tokNumber, text: s[i:j]}), j
		default:
			toks, i = append(toks, token{kind: tokPunct, text: s[i : i+1]}), i+1
		}
	}
	return toks
}

// endQuoted returns the index after the closing quote q starting the scan at i.
// A doubled quote is part of the text; backslash escapes apply to E-prefixed strings.
func endQuoted(s string, i int, q byte, backslash bool) (int, bool) {
	for i < len(s) {
		switch {
		case backslash && s[i] == '\\':
			i += 2
		case s[i] == q && i+1 < len(s) && s[i+1] == q:
			i += 2
		case s[i] == q:
			return i + 1, true
		default:
			i++
		}
	}
	return 0, false
}

// dollarTag returns the opening tag ($$ or $name$) at the start of s, or "".
func dollarTag(s string) string {
	switch {
	case len(s) < 2 || s[0] != '$':
		return ""
	case s[1] == '$':
		return "$$"
	case !isIdentStart(s[1]):
		return "" // a parameter such as $1
	}
	for j := 2; j < len(s); j++ {
		if s[j] == '$' {
			return s[:j+1]
		}
		if !isIdentChar(s[j]) {
			return ""
		}
	}
	return ""
}

// tokens is a cursor over the tokens of a statement.
type tokens struct {
	t []token
	i int
}

func (p *tokens) peek() token {
	if p.i < len(p.t) {
		return p.t[p.i]
	}
	return token{kind: tokPunct, text: ""}
}

func (p *tokens) done() bool {
	// A trailing semicolon ends the statement.
	return p.i >= len(p.t) || (p.i == len(p.t)-1 && p.t[p.i].kind == tokPunct && p.t[p.i].text == ";")
}

// accept consumes the keywords in order if all are next.
func (p *tokens) accept(kws ...string) bool {
	for k, kw := range kws {
		if p.i+k >= len(p.t) || !p.t[p.i+k].is(kw) {
			return false
		}
	}
	p.i += len(kws)
	return true
}

func (p *tokens) punct(s string) bool {
	if t := p.peek(); t.kind == tokPunct && t.text == s {
		p.i++
		return true
	}
	return false
}

// name reads a possibly qualified name and returns its parts.
func (p *tokens) name() ([]string, bool) {
	var parts []string
	for {
		t := p.peek()
		if !t.isName() {
			return nil, false
		}
		p.i++
		parts = append(parts, t.text)
		if !p.punct(".") {
			return parts, true
		}
	}
}

// A rename recognised in a statement.
type renameStmt struct {
	kind     string   // "table", "column" or "index"
	table    []string // qualified table name (table and column renames)
	from, to string
}

// parseRename recognises ALTER TABLE ... RENAME [COLUMN] ... TO ... and
// ALTER INDEX ... RENAME TO ....
func parseRename(stmt string) (*renameStmt, bool) {
	p := &tokens{t: lexSQL(stmt)}
	if !p.accept("alter") {
		return nil, false
	}
	switch {
	case p.accept("table"):
		p.accept("if", "exists")
		p.accept("only")
		tbl, ok := p.name()
		if !ok {
			return nil, false
		}
		p.punct("*")
		if !p.accept("rename") {
			return nil, false
		}
		if p.accept("to") {
			to, ok := p.name()
			if !ok || len(to) != 1 || !p.done() {
				return nil, false
			}
			return &renameStmt{kind: "table", table: tbl, from: tbl[len(tbl)-1], to: to[0]}, true
		}
		if p.accept("constraint") {
			return nil, false
		}
		p.accept("column")
		from, ok := p.name()
		if !ok || len(from) != 1 || !p.accept("to") {
			return nil, false
		}
		to, ok := p.name()
		if !ok || len(to) != 1 || !p.done() {
			return nil, false
		}
		return &renameStmt{kind: "column", table: tbl, from: from[0], to: to[0]}, true
	case p.accept("index"):
		p.accept("if", "exists")
		idx, ok := p.name()
		if !ok || !p.accept("rename", "to") {
			return nil, false
		}
		to, ok := p.name()
		if !ok || len(to) != 1 || !p.done() {
			return nil, false
		}
		return &renameStmt{kind: "index", from: idx[len(idx)-1], to: to[0]}, true
	}
	return nil, false
}

// sameTable reports whether the qualified name denotes t.
func sameTable(name []string, t *schema.Table) bool {
	if len(name) == 0 || name[len(name)-1] != t.Name {
		return false
	}
	return len(name) == 1 || t.Schema == nil || name[len(name)-2] == t.Schema.Name
}

// fixRenames turns the drop+add pairs a rename statement produced into rename changes,
// as the official CLI's FixChange does, so that lint reports a backward-incompatible
// rename instead of a destructive drop.
func fixRenames(stmt string, changes schema.Changes) schema.Changes {
	r, ok := parseRename(stmt)
	if !ok {
		return changes
	}
	switch r.kind {
	case "table":
		i, j := changes.LastIndexDropTable(r.from), changes.LastIndexAddTable(r.to)
		if i == -1 || j == -1 {
			return changes
		}
		drop, add := changes[i].(*schema.DropTable), changes[j].(*schema.AddTable)
		if !sameTable(r.table, drop.T) {
			return changes
		}
		changes[max(i, j)] = &schema.RenameTable{From: drop.T, To: add.T}
		changes.RemoveIndex(min(i, j))
	case "column":
		for _, c := range changes {
			if m, ok := c.(*schema.ModifyTable); ok && sameTable(r.table, m.T) {
				m.Changes = renameColumn(m.Changes, r.from, r.to)
			}
		}
	case "index":
		for _, c := range changes {
			m, ok := c.(*schema.ModifyTable)
			if !ok {
				continue
			}
			mc := schema.Changes(m.Changes)
			i, j := mc.IndexDropIndex(r.from), mc.IndexAddIndex(r.to)
			if i == -1 || j == -1 {
				continue
			}
			mc[max(i, j)] = &schema.RenameIndex{From: mc[i].(*schema.DropIndex).I, To: mc[j].(*schema.AddIndex).I}
			mc.RemoveIndex(min(i, j))
			m.Changes = mc
		}
	}
	return changes
}

// renameColumn replaces DROP COLUMN from + ADD COLUMN to with one rename. When the diff
// matched the old name to another column instead (it shows a modified column), the
// modification becomes the rename and the addition is the column now named "from".
func renameColumn(changes schema.Changes, from, to string) schema.Changes {
	j := changes.IndexAddColumn(to)
	if j == -1 {
		return changes
	}
	add := changes[j].(*schema.AddColumn)
	if i := changes.IndexDropColumn(from); i != -1 {
		changes[max(i, j)] = &schema.RenameColumn{From: changes[i].(*schema.DropColumn).C, To: add.C}
		changes.RemoveIndex(min(i, j))
		return changes
	}
	if i := changes.IndexModifyColumn(from); i != -1 {
		mod := changes[i].(*schema.ModifyColumn)
		changes[min(i, j)] = &schema.RenameColumn{From: mod.From, To: add.C}
		changes[max(i, j)] = &schema.AddColumn{C: mod.To}
	}
	return changes
}

// stmtParser is handed to the engine's analyzers as sqlcheck.File.Parser; they call
// these methods through interface assertions (sql/sqlcheck/datadepend and incompatible).
type stmtParser struct{}

// ColumnFilledBefore reports whether a statement before pos fills column c of table t
// for every row: `UPDATE t SET c = <not NULL>` without WHERE, or with `WHERE c IS NULL`
// (the two forms the official parser accepts). An UPDATE with FROM is not counted.
func (stmtParser) ColumnFilledBefore(stmts []*migrate.Stmt, t *schema.Table, c *schema.Column, pos int) (bool, error) {
	for _, s := range stmts {
		if s.Pos >= pos {
			break
		}
		if updateFills(s.Text, t, c.Name) {
			return true, nil
		}
	}
	return false, nil
}

func updateFills(stmt string, t *schema.Table, col string) bool {
	p := &tokens{t: lexSQL(stmt)}
	if !p.accept("update") {
		return false
	}
	p.accept("only")
	tbl, ok := p.name()
	if !ok || !sameTable(tbl, t) {
		return false
	}
	p.punct("*")
	alias := tbl[len(tbl)-1]
	if p.accept("as") || (p.peek().isName() && !p.peek().is("set")) {
		a, ok := p.name()
		if !ok || len(a) != 1 {
			return false
		}
		alias = a[0]
	}
	if !p.accept("set") {
		return false
	}
	// Assignments up to WHERE, FROM, RETURNING or the end, split at top-level commas.
	var (
		filled bool
		cur    []token
		depth  int
	)
	flush := func() {
		if assignFills(cur, col) {
			filled = true
		}
		cur = nil
	}
	for ; !p.done(); p.i++ {
		t := p.peek()
		if depth == 0 && (t.is("where") || t.is("from") || t.is("returning")) {
			break
		}
		switch {
		case t.kind == tokPunct && t.text == "(":
			depth++
		case t.kind == tokPunct && t.text == ")":
			depth--
		case depth == 0 && t.kind == tokPunct && t.text == ",":
			flush()
			continue
		}
		cur = append(cur, t)
	}
	flush()
	switch {
	case !filled:
		return false
	case p.done():
		return true
	case p.accept("where"):
		// Only `WHERE col IS NULL` (optionally qualified) keeps "every row is filled".
		c, ok := p.name()
		switch {
		case !ok || c[len(c)-1] != col || (len(c) > 1 && c[len(c)-2] != alias):
		case p.accept("is", "null"):
			return p.done()
		}
	}
	return false
}

// assignFills reports whether one SET item assigns a value other than NULL to col:
// `col = expr` or `(a, col, ...) = (...)`.
func assignFills(item []token, col string) bool {
	eq := -1
	for k, t := range item {
		if t.kind == tokPunct && t.text == "=" {
			eq = k
			break
		}
	}
	if eq < 1 || eq == len(item)-1 {
		return false
	}
	target, value := item[:eq], item[eq+1:]
	named := false
	for _, t := range target {
		if t.isName() && t.text == col {
			named = true
		}
	}
	// Only the column itself, or a parenthesised column list, is a target we trust.
	if single := len(target) == 1; !named || (!single && !(target[0].text == "(" && target[0].kind == tokPunct)) {
		return false
	}
	return !(len(value) == 1 && value[0].is("null"))
}

// CreateViewAfter reports whether a statement after pos creates a view named old that
// selects from the renamed table new (`CREATE [OR REPLACE] VIEW old AS SELECT ... FROM new`),
// the documented way to keep a renamed table readable under its old name.
func (stmtParser) CreateViewAfter(stmts []*migrate.Stmt, old, new string, pos int) (bool, error) {
	for _, s := range stmts {
		if s.Pos <= pos {
			continue
		}
		p := &tokens{t: lexSQL(s.Text)}
		if !p.accept("create") {
			continue
		}
		p.accept("or", "replace")
		if !p.accept("view") {
			continue
		}
		v, ok := p.name()
		if !ok || v[len(v)-1] != old {
			continue
		}
		// Skip to the top-level FROM and expect exactly one table until the end.
		for !p.done() && !p.peek().is("from") {
			p.i++
		}
		if !p.accept("from") {
			continue
		}
		if src, ok := p.name(); ok && src[len(src)-1] == new && p.done() {
			return true, nil
		}
	}
	return false, nil
}
