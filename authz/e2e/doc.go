// Package e2e holds tokenwise's end-to-end tests: a real tokenwise server on
// loopback listeners, a real JWKS issuer over HTTP, a real redis-server, and
// the generated envoy.service.auth.v3 client sending CheckRequests built the
// way Envoy builds them. Each test reads as something a user does.
package e2e
