// Package policies holds tokenwise's bundled Rego policy, the one a user
// starts from: public routes, scopes per route and one-time use on chosen
// routes, kept in data.json. It is embedded so `tokenwise dev` can run it
// from an installed binary.
package policies

import "embed"

// FS holds the bundled policy at its root: authz.rego (package envoy.authz,
// queried at data.envoy.authz.allow), data.json (data.tokenwise.routes) and
// the _test.rego tests, which tokenwise's policy loader skips. Load it with
// policy.Options{FS: policies.FS} and policy paths ["."].
//
//go:embed *.rego *.json library/*.rego
var FS embed.FS
