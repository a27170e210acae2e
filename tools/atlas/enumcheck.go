package main

import (
	"context"
	"fmt"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

// checkEnumChanges rejects enum changes PostgreSQL cannot express with ALTER TYPE
// (dropping or reordering values). The engine library at this version plans such a
// change as no statements at all (its alterEnum compares the old values with
// themselves), which would make a real difference invisible: a diff that looks empty.
// The official CLI v0.13.1 refuses with the same message.
func checkEnumChanges(changes []schema.Change) error {
	for _, c := range changes {
		switch c := c.(type) {
		case *schema.ModifyObject:
			from, ok1 := c.From.(*schema.EnumType)
			to, ok2 := c.To.(*schema.EnumType)
			if !ok1 || !ok2 {
				continue
			}
			toIdx := make(map[string]int, len(to.Values))
			for i, v := range to.Values {
				toIdx[v] = i
			}
			last := -1
			for _, v := range from.Values {
				i, ok := toIdx[v]
				if !ok {
					return fmt.Errorf("dropping enum (%q) value is not supported (value %q)", from.T, v)
				}
				if i < last {
					return fmt.Errorf("reordering enum %q value %q is not supported", from.T, v)
				}
				last = i
			}
		case *schema.ModifySchema:
			if err := checkEnumChanges(c.Changes); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkedDriver guards PlanChanges with checkEnumChanges.
type checkedDriver struct{ migrate.Driver }

func (d checkedDriver) PlanChanges(ctx context.Context, name string, changes []schema.Change, opts ...migrate.PlanOption) (*migrate.Plan, error) {
	if err := checkEnumChanges(changes); err != nil {
		return nil, err
	}
	return d.Driver.PlanChanges(ctx, name, changes, opts...)
}
