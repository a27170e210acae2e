package main

// The official CLI v0.13.1 lints PostgreSQL migrations with a "concurrent_index"
// analyzer (PG101-PG103) that the Community build of the newer engine library no longer
// ships. This is our own implementation of the same rule with the same codes, texts
// and options (lint { concurrent_index { error, check_create, check_drop, check_txmode } }).
// It reports warnings by default (error = false), like the official one.

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"ariga.io/atlas/schemahcl"
	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlcheck"
)

type concurrentIndex struct {
	Error       *bool `spec:"error"`
	CheckCreate *bool `spec:"check_create"`
	CheckDrop   *bool `spec:"check_drop"`
	CheckTxMode *bool `spec:"check_txmode"`
}

func boolp(b bool) *bool { return &b }

func boolv(b *bool) bool { return b != nil && *b }

func newConcurrentIndex(r *schemahcl.Resource) (*concurrentIndex, error) {
	az := &concurrentIndex{Error: boolp(false), CheckCreate: boolp(true), CheckDrop: boolp(true), CheckTxMode: boolp(true)}
	if c, ok := r.Resource("concurrent_index"); ok {
		if err := c.As(az); err != nil {
			return nil, fmt.Errorf("parsing concurrent_index check options: %w", err)
		}
	}
	return az, nil
}

// Name implements sqlcheck.NamedAnalyzer.
func (*concurrentIndex) Name() string { return "concurrent_index" }

var concurrentlyRe = regexp.MustCompile(`(?i)\bCONCURRENTLY\b`)

// Analyze implements sqlcheck.Analyzer.
func (a *concurrentIndex) Analyze(_ context.Context, p *sqlcheck.Pass) error {
	var (
		notx      bool
		concNoTx  int
		diags     []sqlcheck.Diagnostic
		violation bool
	)
	if l, ok := p.File.File.(*migrate.LocalFile); ok {
		mode := l.Directive("txmode")
		notx = len(mode) == 1 && mode[0] == "none"
	}
	for _, sc := range p.File.Changes {
		concurrent := sc.Stmt != nil && concurrentlyRe.MatchString(sc.Stmt.Text)
		for _, c := range sc.Changes {
			m, ok := c.(*schema.ModifyTable)
			// Indexes of tables created in this file lock nobody.
			if !ok || p.File.TableSpan(m.T)&sqlcheck.SpanAdded != 0 {
				continue
			}
			for _, mc := range m.Changes {
				var (
					check bool
					code  string
					text  string
				)
				switch mc := mc.(type) {
				case *schema.AddIndex:
					check, code = boolv(a.CheckCreate), "PG101"
					text = fmt.Sprintf("Creating index %q non-concurrently causes write locks on the %q table", mc.I.Name, m.T.Name)
				case *schema.DropIndex:
					check, code = boolv(a.CheckDrop), "PG102"
					text = fmt.Sprintf("Dropping index %q non-concurrently causes write locks on the %q table", mc.I.Name, m.T.Name)
				default:
					continue
				}
				switch {
				case !check:
				case concurrent && !notx && boolv(a.CheckTxMode):
					concNoTx++
				case !concurrent:
					violation = true
					diags = append(diags, sqlcheck.Diagnostic{Pos: sc.Stmt.Pos, Code: code, Text: text})
				}
			}
		}
	}
	if concNoTx > 0 {
		diags = append([]sqlcheck.Diagnostic{{
			Pos:  0,
			Code: "PG103",
			Text: "Indexes cannot be created or deleted concurrently within a transaction. Add the `atlas:txmode none` " +
				"directive to the header to prevent this file from running in a transaction",
		}}, diags...)
	}
	if len(diags) == 0 {
		return nil
	}
	const reportText = "concurrent index violations detected"
	p.Reporter.WriteReport(sqlcheck.Report{Text: reportText, Diagnostics: diags})
	if boolv(a.Error) && (violation || concNoTx == 0) {
		return errors.New(reportText)
	}
	return nil
}
