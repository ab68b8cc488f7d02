// Package examples holds tokenwise's runnable deployments (plain Envoy,
// Istio, Envoy Gateway, Kubernetes) and the tests that prove every Envoy
// configuration, manifest, tokenwise configuration and policy in them valid.
//
// There is no Go API here: the package exists so `go test ./examples/` checks
// the files the way Envoy, the Kubernetes API server and tokenwise would
// read them, and fails on a typo in a field name, a bad enum or a reference
// to something that is not defined.
package examples
