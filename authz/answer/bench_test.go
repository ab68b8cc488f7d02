package answer

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// BenchmarkAllow builds the allow answer of an object decision with headers
// plus a claim header and the Authorization removal, as `reuse` does.
func BenchmarkAllow(b *testing.B) {
	d := policy.Decision{Allowed: true, Headers: []policy.Header{{Name: "x-scopes", Value: "orders:read payments:write"}, {Name: "x-tenant", Value: "acme"}}}
	up := Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"authorization"}}
	b.ReportAllocs()
	for b.Loop() {
		if r := Allow(d, up); !r.Allowed {
			b.Fatal("not an allow")
		}
	}
}

// BenchmarkDeny builds a policy deny for a valid token: 403 with a
// challenge and a JSON body.
func BenchmarkDeny(b *testing.B) {
	d := policy.Decision{HTTPStatus: 403, Reason: "no rule allows this request"}
	b.ReportAllocs()
	for b.Loop() {
		if r := Denied(d, true); r.Allowed {
			b.Fatal("not a deny")
		}
	}
}

// BenchmarkInvalidToken builds the 401 for a token that failed verification.
func BenchmarkInvalidToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if r := InvalidToken("token is expired"); r.Allowed {
			b.Fatal("not a deny")
		}
	}
}
