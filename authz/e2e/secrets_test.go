package e2e

import (
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/config"
)

// A full scenario (allow, policy deny, invalid token, token in a cookie and
// in the query, policy error, two tokens) must leave no secret in any
// output: not a token, not its signature or payload segment, not an
// Authorization or Cookie value. The outputs are the process log (which
// carries the decision log), /metrics, and every response: gRPC status
// message, headers (WWW-Authenticate included) and body.
func TestNoSecretInAnyOutput(t *testing.T) {
	h := start(t, func(c *config.Config) {
		c.Token.Cookie = "session"
		c.Token.QueryParameter = "access_token"
	})
	h.waitReady()
	claims := map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"}
	allowTok := h.issuer.Mint(claims)
	denyTok := h.issuer.Mint(claims)
	cookieTok := h.issuer.Mint(claims)
	queryTok := h.issuer.Mint(claims)
	errorTok := h.issuer.Mint(claims)
	tampered := tamperPayload(h.issuer.Mint(claims))
	otherCookie := "sid=opaque-session-secret-42"

	var responses []*authv3.CheckResponse
	send := func(req *authv3.CheckRequest) { responses = append(responses, h.check(req)) }
	send(envoyRequest("GET", "/orders/1", bearer(allowTok)))
	send(envoyRequest("GET", "/admin", bearer(denyTok)))
	send(envoyRequest("GET", "/orders/1", bearer(tampered)))
	send(envoyRequest("GET", "/orders/1", map[string]string{"cookie": otherCookie + "; session=" + cookieTok}))
	send(envoyRequest("GET", "/orders/1?x=1&access_token="+queryTok, nil))
	send(envoyRequest("GET", "/conflict", bearer(errorTok)))
	send(envoyRequest("GET", "/orders/1?access_token="+queryTok, bearer(allowTok)))
	send(envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + tampered + "x"}))
	send(rawHeaderRequest("GET", "/orders/1", "authorization", "Bearer "+allowTok, "authorization", "Bearer "+denyTok))
	send(envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Basic dXNlcjpodW50ZXIy"}))
	if got := outcomes(responses); got != "allow deny deny allow allow deny deny deny deny deny" {
		t.Fatalf("scenario outcomes = %q", got)
	}

	secrets := map[string]string{"basic credentials": "dXNlcjpodW50ZXIy", "other cookie": "opaque-session-secret-42"}
	for name, tok := range map[string]string{"allow": allowTok, "deny": denyTok, "cookie": cookieTok, "query": queryTok, "error": errorTok, "tampered": tampered} {
		parts := strings.Split(tok, ".")
		secrets[name+" token"] = tok
		secrets[name+" payload"] = parts[1]
		secrets[name+" signature"] = parts[2]
	}
	_, metrics := h.get("/metrics")
	outputs := map[string]string{"log": h.logs.String(), "metrics": metrics}
	for n, resp := range responses {
		outputs["response "+string(rune('A'+n))] = responseText(resp)
	}
	for where, text := range outputs {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s carries the %s", where, what)
			}
		}
		for _, marker := range []string{"eyJ", "Bearer ey", "Basic "} {
			if strings.Contains(text, marker) {
				t.Errorf("%s carries %q", where, marker)
			}
		}
	}
	// The decision log still says what happened, by decision, not by token.
	if !strings.Contains(outputs["log"], `"path":"/orders/1?x=1&access_token=REDACTED"`) {
		t.Errorf("query token not redacted in the decision log:\n%s", grepLines(outputs["log"], "access_token"))
	}
}

// tamperPayload changes the payload so the signature no longer matches.
func tamperPayload(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	return strings.Join(parts, ".")
}

func outcomes(rs []*authv3.CheckResponse) string {
	out := make([]string, len(rs))
	for n, r := range rs {
		out[n] = "deny"
		if r.GetOkResponse() != nil {
			out[n] = "allow"
		}
	}
	return strings.Join(out, " ")
}

// responseText is everything a response shows the client or the upstream.
func responseText(r *authv3.CheckResponse) string {
	var b strings.Builder
	b.WriteString(r.GetStatus().GetMessage() + "\n")
	if d := r.GetDeniedResponse(); d != nil {
		b.WriteString(d.GetBody() + "\n")
		for _, h := range d.GetHeaders() {
			b.WriteString(h.GetHeader().GetKey() + ": " + h.GetHeader().GetValue() + "\n")
		}
	}
	if ok := r.GetOkResponse(); ok != nil {
		for _, h := range append(ok.GetHeaders(), ok.GetResponseHeadersToAdd()...) {
			b.WriteString(h.GetHeader().GetKey() + ": " + h.GetHeader().GetValue() + "\n")
		}
	}
	b.WriteString(r.GetDynamicMetadata().String())
	return b.String()
}
