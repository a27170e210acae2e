package main

import (
	"testing"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

func TestParseRename(t *testing.T) {
	for _, c := range []struct {
		stmt string
		want *renameStmt
	}{
		{`ALTER TABLE users RENAME TO atlas_users;`, &renameStmt{"table", []string{"users"}, "users", "atlas_users"}},
		{`alter table if exists only "public"."Users" * rename to "X";`, &renameStmt{"table", []string{"public", "Users"}, "Users", "X"}},
		{"ALTER TABLE users -- the table\n RENAME COLUMN id TO uid", &renameStmt{"column", []string{"users"}, "id", "uid"}},
		{`ALTER TABLE public.users RENAME "Note" TO note;`, &renameStmt{"column", []string{"public", "users"}, "Note", "note"}},
		{`ALTER INDEX users_email_idx RENAME TO users_email_key;`, &renameStmt{"index", nil, "users_email_idx", "users_email_key"}},
		{`ALTER TABLE users RENAME CONSTRAINT a TO b;`, nil},
		{`ALTER TABLE users DROP COLUMN id;`, nil},
		{`ALTER TABLE users RENAME COLUMN id TO uid, ADD COLUMN x int;`, nil},
		{`SELECT 'ALTER TABLE users RENAME TO x'`, nil},
	} {
		got, ok := parseRename(c.stmt)
		if (c.want == nil) != !ok {
			t.Fatalf("%q: got %+v, %v; want %+v", c.stmt, got, ok, c.want)
		}
		if c.want != nil && (got.kind != c.want.kind || got.from != c.want.from || got.to != c.want.to || len(got.table) != len(c.want.table)) {
			t.Fatalf("%q: got %+v; want %+v", c.stmt, got, c.want)
		}
	}
}

// The official pgparse.ColumnFilledBefore accepts `UPDATE t SET c = <not NULL>` with no
// WHERE or with `WHERE c IS NULL`, in a statement before the one changing the column.
func TestColumnFilledBefore(t *testing.T) {
	tbl := &schema.Table{Name: "users", Schema: &schema.Schema{Name: "public"}}
	col := &schema.Column{Name: "a"}
	for _, c := range []struct {
		update string
		want   bool
	}{
		{`UPDATE users SET a = 1;`, true},
		{`update public.users set a = 'x;y', b = NULL;`, true},
		{`UPDATE users AS u SET b = 2, a = coalesce(b, 0) WHERE a IS NULL;`, true},
		{`UPDATE users u SET a = $$text$$ WHERE u.a IS NULL;`, true},
		{`UPDATE ONLY users SET (b, a) = (1, 2);`, true},
		{`UPDATE users SET a = NULL;`, false},
		{`UPDATE users SET b = 1;`, false},
		{`UPDATE users SET a = 1 WHERE id < 10;`, false},
		{`UPDATE users SET a = 1 WHERE a IS NULL AND id < 10;`, false},
		{`UPDATE other SET a = 1;`, false},
		{`UPDATE audit.users SET a = 1;`, false},
		{`UPDATE users SET a = o.a FROM other o WHERE o.id = users.id;`, false},
		{`-- UPDATE users SET a = 1;` + "\nSELECT 1;", false},
	} {
		stmts := []*migrate.Stmt{{Pos: 0, Text: c.update}, {Pos: 100, Text: `ALTER TABLE users ALTER COLUMN a SET NOT NULL;`}}
		got, err := stmtParser{}.ColumnFilledBefore(stmts, tbl, col, 100)
		if err != nil || got != c.want {
			t.Fatalf("%q: got %v, %v; want %v", c.update, got, err, c.want)
		}
		// A statement after the change does not count.
		if got, _ := (stmtParser{}).ColumnFilledBefore(stmts, tbl, col, 0); got {
			t.Fatalf("%q counted although it runs after the change", c.update)
		}
	}
}

func TestCreateViewAfter(t *testing.T) {
	stmts := []*migrate.Stmt{
		{Pos: 0, Text: `ALTER TABLE users RENAME TO atlas_users;`},
		{Pos: 50, Text: `CREATE VIEW users AS SELECT * FROM atlas_users;`},
	}
	if ok, _ := (stmtParser{}).CreateViewAfter(stmts, "users", "atlas_users", 0); !ok {
		t.Fatal("view for the renamed table not recognised")
	}
	if ok, _ := (stmtParser{}).CreateViewAfter(stmts, "users", "other", 0); ok {
		t.Fatal("view on another table recognised")
	}
}

func TestFixRenamesTable(t *testing.T) {
	users, renamed := &schema.Table{Name: "users"}, &schema.Table{Name: "atlas_users"}
	changes := schema.Changes{&schema.DropTable{T: users}, &schema.AddTable{T: renamed}}
	got := fixRenames(`ALTER TABLE users RENAME TO atlas_users`, changes)
	if len(got) != 1 {
		t.Fatalf("got %d changes", len(got))
	}
	if r, ok := got[0].(*schema.RenameTable); !ok || r.From != users || r.To != renamed {
		t.Fatalf("got %#v", got[0])
	}
	// Other statements leave the changes alone.
	changes = schema.Changes{&schema.DropTable{T: users}, &schema.AddTable{T: renamed}}
	if got := fixRenames(`DROP TABLE users; CREATE TABLE atlas_users ()`, changes); len(got) != 2 {
		t.Fatalf("got %d changes", len(got))
	}
}
