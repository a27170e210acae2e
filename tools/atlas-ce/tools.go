//go:build tools

// Package tools pins the Atlas Community Edition CLI that `make tools` builds.
//
// The CLI module (ariga.io/atlas/cmd/atlas) is required at its last release served by
// the module proxy, together with the engine module at the exact commit that release
// was cut from (the CLI's go.mod replaces the engine with a relative path, which Go
// ignores in dependencies). golang.org/x/tools is raised above the CLI's own pin
// because older versions no longer compile with current Go toolchains.
package tools

import _ "ariga.io/atlas/cmd/atlas"
