package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/config"
)

// answer is a CheckResponse as the client and the upstream experience it.
type answer struct {
	allowed  bool
	status   int               // HTTP status of a deny
	headers  map[string]string // upstream headers on allow, client headers on deny
	appended map[string]bool
	removed  []string
	body     string
}

func read(resp *authv3.CheckResponse) answer {
	a := answer{headers: map[string]string{}, appended: map[string]bool{}}
	a.allowed = resp.GetStatus().GetCode() == int32(codes.OK)
	if ok := resp.GetOkResponse(); a.allowed && ok != nil {
		for _, h := range ok.GetHeaders() {
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			a.appended[h.GetHeader().GetKey()] = h.GetAppend() == nil || h.GetAppend().GetValue()
		}
		a.removed = ok.GetHeadersToRemove()
	}
	if d := resp.GetDeniedResponse(); d != nil {
		a.status = int(d.GetStatus().GetCode())
		a.body = d.GetBody()
		for _, h := range d.GetHeaders() {
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	}
	return a
}

func (a answer) errorField() string {
	var body struct{ Error string }
	_ = json.Unmarshal([]byte(a.body), &body)
	return body.Error
}

func TestAValidTokenIsAllowedWithHeadersForTheUpstream(t *testing.T) {
	h := start(t)
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read orders:write"})

	// The client also sends its own x-user-id: it must not reach the upstream beside ours.
	req := envoyRequest("GET", "/orders/42?expand=1", map[string]string{"authorization": "Bearer " + token, "x-user-id": "admin"})
	a := read(h.check(req))
	if !a.allowed {
		t.Fatalf("denied: %+v", a)
	}
	if a.headers["x-user-id"] != "alice" || a.appended["x-user-id"] {
		t.Errorf("x-user-id = %q appended=%v; want alice, overwriting the client's", a.headers["x-user-id"], a.appended["x-user-id"])
	}
	if a.headers["x-scopes"] != "orders:read orders:write" || a.appended["x-scopes"] {
		t.Errorf("policy header x-scopes = %q appended=%v", a.headers["x-scopes"], a.appended["x-scopes"])
	}
}

func TestTheAnswersTable(t *testing.T) {
	h := start(t)
	h.waitReady()
	good := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"})
	noScope := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api"})
	expired := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix()})

	cases := []struct {
		name   string
		req    *authv3.CheckRequest
		status int
		www    string
		error  string
	}{
		{"no token, the policy denies", envoyRequest("GET", "/orders/1", nil),
			401, `Bearer realm="tokenwise"`, "unauthorized"},
		{"expired token", envoyRequest("GET", "/orders/1", bearer(expired)),
			401, `Bearer realm="tokenwise", error="invalid_token", error_description=`, "invalid_token"},
		{"garbage token", envoyRequest("GET", "/orders/1", bearer("not.a.jwt")),
			401, `Bearer realm="tokenwise", error="invalid_token"`, "invalid_token"},
		{"two Authorization headers, joined by Envoy", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + good + ",Bearer " + good}),
			400, `Bearer realm="tokenwise", error="invalid_request"`, "invalid_request"},
		{"two Authorization headers in header_map", rawHeaderRequest("GET", "/orders/1", "authorization", "Bearer "+good, "authorization", "Bearer "+good),
			400, `Bearer realm="tokenwise", error="invalid_request"`, "invalid_request"},
		{"valid token, the policy denies", envoyRequest("GET", "/orders/1", bearer(noScope)),
			403, `Bearer realm="tokenwise", error="insufficient_scope", error_description="no rule allows this request"`, "insufficient_scope"},
		{"the policy fails", envoyRequest("GET", "/conflict", bearer(good)),
			500, "", "server_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := read(h.check(c.req))
			if a.allowed || a.status != c.status {
				t.Fatalf("allowed=%v status=%d, want deny %d (%s)", a.allowed, a.status, c.status, a.body)
			}
			if !strings.HasPrefix(a.headers["www-authenticate"], c.www) || (c.www == "") != (a.headers["www-authenticate"] == "") {
				t.Errorf("www-authenticate = %q, want prefix %q", a.headers["www-authenticate"], c.www)
			}
			if a.headers["content-type"] != "application/json" || a.errorField() != c.error {
				t.Errorf("body %s (content-type %q), want error %q", a.body, a.headers["content-type"], c.error)
			}
		})
	}
}

func TestHeaderMapRequestsAreReadLikeHeaders(t *testing.T) {
	h := start(t)
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "carol", "aud": "orders-api", "scope": "orders:read"})
	a := read(h.check(rawHeaderRequest("GET", "/orders/7", "authorization", "Bearer "+token)))
	if !a.allowed || a.headers["x-user-id"] != "carol" {
		t.Fatalf("header_map request: %+v", a)
	}
}

func TestPublicRoutesNeedNoTokenAndCannotBeSpoofed(t *testing.T) {
	h := start(t)
	h.waitReady()
	a := read(h.check(envoyRequest("GET", "/public/docs", map[string]string{"x-user-id": "admin"})))
	if !a.allowed {
		t.Fatalf("public route denied: %+v", a)
	}
	if !contains(a.removed, "x-user-id") {
		t.Errorf("a client-sent x-user-id would reach the upstream of an anonymous request: removed=%v", a.removed)
	}
}

func TestThePolicyShapesItsDeny(t *testing.T) {
	h := start(t)
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api"})
	a := read(h.check(envoyRequest("GET", "/premium", bearer(token))))
	if a.status != 402 || a.body != "pay first" || a.headers["x-reason"] != "unpaid" {
		t.Fatalf("deny = %+v", a)
	}
}

func TestBooleanDecisions(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\ndefault allow := false\n\nallow if input.token.claims.sub == \"alice\"\n")
	h.waitReady()
	alice := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api"})
	bob := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api"})
	if a := read(h.check(envoyRequest("GET", "/anything", bearer(alice)))); !a.allowed || a.headers["x-user-id"] != "alice" {
		t.Errorf("alice: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/anything", bearer(bob)))); a.status != 403 {
		t.Errorf("bob: %+v", a)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// remove_authorization strips the token before the request goes upstream.
func TestRemoveAuthorizationStripsTheTokenUpstream(t *testing.T) {
	for _, remove := range []bool{false, true} {
		h := start(t, func(c *config.Config) { c.Forward.RemoveAuthorization = remove })
		h.waitReady()
		token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"})
		a := read(h.check(envoyRequest("GET", "/orders/1", bearer(token))))
		if !a.allowed || contains(a.removed, "authorization") != remove {
			t.Errorf("remove_authorization %v: allowed %v, headers_to_remove %v", remove, a.allowed, a.removed)
		}
	}
}

// A decision's dynamic_metadata reaches Envoy.
func TestDynamicMetadataReachesEnvoy(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\nallow := {\"allowed\": true, \"dynamic_metadata\": {\"tier\": \"gold\", \"n\": 2}}\n")
	h.waitReady()
	resp := h.check(envoyRequest("GET", "/x", nil))
	fields := resp.GetDynamicMetadata().GetFields()
	if fields["tier"].GetStringValue() != "gold" || fields["n"].GetNumberValue() != 2 {
		t.Fatalf("dynamic metadata = %v", resp.GetDynamicMetadata())
	}
}
