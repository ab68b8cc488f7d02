package server

import (
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/introspect/introspecttest"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// BenchmarkCheckCachedToken compares, on one server in one run, a Check of
// a reused JWT (answered from the verified-token cache) with a Check of a
// reused opaque token of the same content (answered from the introspection
// cache). The target is opaque ≤ 1.1 × jwt.
func BenchmarkCheckCachedToken(b *testing.B) {
	a, iss, endpoint := benchServerWithIntrospection(b)
	const opaque = "ory_at_2YotnFZFEjr1zCsicMWpAA.tGzv3JOkF0XG5Qx2TlKWIA"
	endpoint.Set(opaque, map[string]any{"iss": endpoint.Issuer(), "sub": "alice", "aud": "orders-api", "jti": "j1",
		"scope": "orders:read payments:write", "exp": time.Now().Add(time.Hour).Unix(), "client_id": "web"})
	b.Run("jwt", func(b *testing.B) {
		runCheck(b, a, benchCheckRequest("/orders/42?view=full", benchToken(iss)), true)
	})
	b.Run("opaque", func(b *testing.B) {
		runCheck(b, a, benchCheckRequest("/orders/42?view=full", opaque), true)
		if endpoint.Calls() != 1 {
			b.Fatalf("%d introspection requests, want 1: the answer was not cached", endpoint.Calls())
		}
	})
}

// benchServerWithIntrospection is benchServer's tokenwise with a second,
// introspecting issuer for ory_at_ tokens.
func benchServerWithIntrospection(b *testing.B) (*Authorizer, *verifytest.Issuer, *introspecttest.Endpoint) {
	b.Helper()
	iss := verifytest.NewIssuer(b)
	endpoint := introspecttest.New(b)
	cfg := benchConfig(iss)
	hydra := endpoint.Config("hydra")
	hydra.Audiences = []string{"orders-api"}
	hydra.Introspection.TokenPrefix = "ory_at_"
	cfg.Issuers = append(cfg.Issuers, hydra)
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	return startBenchServer(b, cfg, benchPolicy), iss, endpoint
}
