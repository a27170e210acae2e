package main

import (
	_ "ariga.io/atlas/sql/postgres"
	_ "ariga.io/atlas/sql/postgres/postgrescheck"
	_ "github.com/hashicorp/hcl/v2/hclsyntax"
	_ "github.com/lib/pq"
	_ "github.com/spf13/cobra"
	_ "github.com/zclconf/go-cty/cty/function"
)

func main() {}
