package main

import (
	"strings"
	"testing"

	"ariga.io/atlas/sql/schema"
)

func TestCheckEnumChanges(t *testing.T) {
	enum := func(vs ...string) *schema.EnumType { return &schema.EnumType{T: "status", Values: vs} }
	mod := func(from, to *schema.EnumType) []schema.Change {
		return []schema.Change{&schema.ModifyObject{From: from, To: to}}
	}
	if err := checkEnumChanges(mod(enum("a", "b"), enum("a", "b", "c"))); err != nil {
		t.Fatalf("adding a value is fine: %v", err)
	}
	if err := checkEnumChanges(mod(enum("a", "b"), enum("x", "a", "y", "b"))); err != nil {
		t.Fatalf("inserting values is fine: %v", err)
	}
	if err := checkEnumChanges(mod(enum("a", "b", "c"), enum("a", "b"))); err == nil || !strings.Contains(err.Error(), "dropping enum") {
		t.Fatalf("dropping must fail, got %v", err)
	}
	if err := checkEnumChanges(mod(enum("a", "b"), enum("b", "a"))); err == nil || !strings.Contains(err.Error(), "reordering") {
		t.Fatalf("reordering must fail, got %v", err)
	}
	nested := []schema.Change{&schema.ModifySchema{Changes: mod(enum("a", "b"), enum("a"))}}
	if err := checkEnumChanges(nested); err == nil {
		t.Fatal("nested drop must fail")
	}
}
