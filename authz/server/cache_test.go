package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// limitsPolicy allows orders with a use limit of two per token; its decision
// depends only on the path, the method and the scopes, so it is remembered.
const limitsPolicy = `package envoy.authz

default allow := false

allow := {"allowed": true, "max_uses": 2} if {
	input.parsed_path[0] == "orders"
	"orders:read" in input.token.scopes
}
`

// TestLimitsRunOnRememberedDecisions: a remembered decision still goes
// through revocation and the use limit on every Check.
func TestLimitsRunOnRememberedDecisions(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	cfg := config.Default()
	is := iss.Config("corp")
	is.Audiences = []string{"orders-api"}
	cfg.Issuers = []config.Issuer{is}
	cfg.Policy.Paths = []string{"."}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		PolicyFS: fstest.MapFS{"p.rego": {Data: []byte(limitsPolicy)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	for deadline := time.Now().Add(10 * time.Second); !srv.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the JWKS did not load")
		}
	}
	a, ctx := srv.Authorizer(), context.Background()
	status := func(token string) int {
		resp, err := a.Check(ctx, benchCheckRequest("/orders/1", token))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOkResponse() != nil {
			return 200
		}
		return int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	mint := func(jti string) string {
		return iss.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": jti,
			"scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()})
	}

	// The use limit: the second Check is answered from the cache, the third
	// is over the limit all the same.
	one := mint("one")
	for i, want := range []int{200, 200, 401} {
		if got := status(one); got != want {
			t.Fatalf("use %d: %d, want %d", i+1, got, want)
		}
	}
	// Another token with the same scopes shares the remembered decision and
	// has its own count.
	two := mint("two")
	if got := status(two); got != 200 {
		t.Fatalf("second token: %d", got)
	}
	// Revocation: refused although its decision is remembered.
	if _, err := a.revoked.RevokeToken(ctx, "corp", "two", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := status(two); got != 401 {
		t.Fatalf("revoked token: %d, want 401", got)
	}
}
