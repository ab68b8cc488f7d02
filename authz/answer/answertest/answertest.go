// Package answertest holds answers of every kind for the front ends' tests:
// each front end checks that it renders them exactly as before.
package answertest

import (
	"time"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/ratelimit"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// Case is one answer, named.
type Case struct {
	Name   string
	Answer reply.Reply
}

// Cases are answers of every kind the pipeline gives, with the awkward
// parts: repeated and mixed-case names, a policy's own body, headers and
// challenge, dynamic metadata, query rewrites, resource metadata.
func Cases() []Case {
	full := policy.Decision{
		Allowed:                 true,
		Headers:                 []policy.Header{{Name: "X-User-Id", Value: "from-policy"}, {Name: "x-tier", Value: "gold"}, {Name: "x-tier", Value: "vip"}},
		RequestHeadersToRemove:  []string{"x-debug", "X-Claim"},
		ResponseHeadersToAdd:    []policy.Header{{Name: "x-served-by", Value: "tokenwise"}, {Name: "x-served-by", Value: "again"}},
		QueryParametersToSet:    []policy.Header{{Name: "tenant", Value: "t1"}},
		QueryParametersToRemove: []string{"debug"},
		DynamicMetadata:         map[string]any{"user": "alice", "n": 2.0, "list": []any{"a", true}},
	}
	up := answer.Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}, {Name: "cookie", Value: "a=b"}}, Remove: []string{"x-claim", "authorization", "x-user-id"}, RemoveQuery: []string{"access_token", "debug"}}
	st := ratelimit.Status{Limit: ratelimit.Limit{Name: `per-"user"`, Key: "alice", Requests: 100, Per: time.Minute, Burst: 20, Cost: 1}, RetryAfter: 6100 * time.Millisecond, Reset: 2 * time.Minute}
	withBody := policy.Decision{HTTPStatus: 402, Body: "pay first", Reason: "unpaid", Headers: []policy.Header{{Name: "X-Reason", Value: "unpaid"}, {Name: "x-reason", Value: "twice"}}, DynamicMetadata: map[string]any{"why": "unpaid"}}
	return []Case{
		{"allow full", answer.Allow(full, up)},
		{"allow bare", answer.Allow(policy.Decision{Allowed: true}, answer.Upstream{})},
		{"allow upstream only", answer.Allow(policy.Decision{Allowed: true}, answer.Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"authorization"}})},
		{"invalid request", answer.InvalidRequest("the request carries more than one token")},
		{"invalid token", answer.InvalidToken("token is \"expired\"\r\n<&>")},
		{"denied no token", answer.Denied(policy.Decision{}, false)},
		{"denied with token", answer.Denied(policy.Decision{Reason: "needs orders:write"}, true)},
		{"denied 422", answer.Denied(policy.Decision{HTTPStatus: 422, Reason: "amount too large"}, true)},
		{"denied 401 with token", answer.Denied(policy.Decision{HTTPStatus: 401, Reason: "sign in again"}, true)},
		{"denied own body", answer.Denied(withBody, true)},
		{"denied own challenge", answer.Denied(policy.Decision{Headers: []policy.Header{{Name: "WWW-Authenticate", Value: `Bearer realm="x", scope="a"`}}}, true)},
		{"unavailable", answer.Unavailable("the use-limit store is unavailable")},
		{"too large", answer.PayloadTooLarge("the request body is too complex to authorize")},
		{"internal", answer.InternalError("policy evaluation failed")},
		{"invalid dpop", answer.InvalidDPoPProof("the DPoP proof's htu is not the request's URL", []string{"ES256", "EdDSA"})},
		{"use nonce", answer.UseDPoPNonce("the DPoP proof must carry the server's nonce", "n0nce", []string{"ES256"})},
		{"denied challenge", answer.DeniedChallenge(policy.Decision{}, false, answer.DPoPChallenge("", "", []string{"ES256"}))},
		{"denied challenge token", answer.DeniedChallenge(policy.Decision{}, true, answer.DPoPChallenge("", "", []string{"ES256"}))},
		{"rate limited", answer.RateLimited(st)},
		{"document", answer.Document(`{"resource":"https://api.test/"}`)},
		{"resource metadata 401", answer.WithResourceMetadata(answer.InvalidToken("token has expired"), "https://api.test/.well-known/oauth-protected-resource")},
		{"resource metadata bare", answer.WithResourceMetadata(answer.Denied(policy.Decision{}, false), "https://api.test/\"x\"")},
		{"allow with nonce", withNonce(answer.Allow(policy.Decision{Allowed: true, ResponseHeadersToAdd: []policy.Header{{Name: "x-a", Value: "1"}}}, answer.Upstream{}))},
		{"resource metadata 403", answer.WithResourceMetadata(answer.Denied(policy.Decision{Reason: "no"}, true), "https://api.test/m")},
	}
}

// withNonce adds a header that replaces any other of its name to an
// allow's response headers, as the server does with DPoP-Nonce.
func withNonce(a reply.Reply) reply.Reply {
	a.ResponseHeaders = append(a.ResponseHeaders, reply.Header{Name: answer.DPoPNonceHeader, Value: "n0nce"})
	return a
}
