package grpcfront

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/answer/answertest"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// responseGolden is each case's CheckResponse as protojson, recorded from
// the answer package when it still built CheckResponses itself (the nonce
// case from the server's own DPoP-Nonce option then): Envoy must see the
// same answers, byte for byte, after the rendering moved here.
var responseGolden = map[string]string{
	"allow full":             `{"status":{},"okResponse":{"headers":[{"header":{"key":"x-tier","value":"gold"},"append":false},{"header":{"key":"x-tier","value":"vip"},"append":true},{"header":{"key":"x-user-id","value":"alice"},"append":false},{"header":{"key":"cookie","value":"a=b"},"append":false}],"headersToRemove":["x-debug","x-claim","authorization"],"responseHeadersToAdd":[{"header":{"key":"x-served-by","value":"tokenwise"},"append":true},{"header":{"key":"x-served-by","value":"again"},"append":true}],"queryParametersToSet":[{"key":"tenant","value":"t1"}],"queryParametersToRemove":["debug","access_token"]},"dynamicMetadata":{"list":["a",true],"n":2,"user":"alice"}}`,
	"allow bare":             `{"status":{},"okResponse":{}}`,
	"allow upstream only":    `{"status":{},"okResponse":{"headers":[{"header":{"key":"x-user-id","value":"alice"},"append":false}],"headersToRemove":["authorization"]}}`,
	"invalid request":        `{"status":{"code":3,"message":"the request carries more than one token"},"deniedResponse":{"status":{"code":"BadRequest"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"invalid_request\", error_description=\"the request carries more than one token\""},"append":false}],"body":"{\"error\":\"invalid_request\",\"error_description\":\"the request carries more than one token\"}"}}`,
	"invalid token":          `{"status":{"code":16,"message":"token is \"expired\"\r\n<&>"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"invalid_token\", error_description=\"token is 'expired'''<&>\""},"append":false}],"body":"{\"error\":\"invalid_token\",\"error_description\":\"token is \\\"expired\\\"\\r\\n\\u003c\\u0026\\u003e\"}"}}`,
	"denied no token":        `{"status":{"code":16,"message":"a bearer token is required"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\""},"append":false}],"body":"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"}}`,
	"denied with token":      `{"status":{"code":7,"message":"needs orders:write"},"deniedResponse":{"status":{"code":"Forbidden"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"insufficient_scope\", error_description=\"needs orders:write\""},"append":false}],"body":"{\"error\":\"insufficient_scope\",\"error_description\":\"needs orders:write\"}"}}`,
	"denied 422":             `{"status":{"code":7,"message":"amount too large"},"deniedResponse":{"status":{"code":"UnprocessableEntity"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false}],"body":"{\"error\":\"access_denied\",\"error_description\":\"amount too large\"}"}}`,
	"denied 401 with token":  `{"status":{"code":16,"message":"sign in again"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\""},"append":false}],"body":"{\"error\":\"unauthorized\",\"error_description\":\"sign in again\"}"}}`,
	"denied own body":        `{"status":{"code":7,"message":"unpaid"},"deniedResponse":{"status":{"code":"PaymentRequired"},"headers":[{"header":{"key":"x-reason","value":"unpaid"},"append":false},{"header":{"key":"x-reason","value":"twice"},"append":true}],"body":"pay first"},"dynamicMetadata":{"why":"unpaid"}}`,
	"denied own challenge":   `{"status":{"code":7},"deniedResponse":{"status":{"code":"Forbidden"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"x\", scope=\"a\""},"append":false}],"body":"{\"error\":\"insufficient_scope\"}"}}`,
	"unavailable":            `{"status":{"code":14,"message":"the use-limit store is unavailable"},"deniedResponse":{"status":{"code":"ServiceUnavailable"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false}],"body":"{\"error\":\"temporarily_unavailable\",\"error_description\":\"the use-limit store is unavailable\"}"}}`,
	"too large":              `{"status":{"code":3,"message":"the request body is too complex to authorize"},"deniedResponse":{"status":{"code":"PayloadTooLarge"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false}],"body":"{\"error\":\"invalid_request\",\"error_description\":\"the request body is too complex to authorize\"}"}}`,
	"internal":               `{"status":{"code":13,"message":"policy evaluation failed"},"deniedResponse":{"status":{"code":"InternalServerError"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false}],"body":"{\"error\":\"server_error\",\"error_description\":\"policy evaluation failed\"}"}}`,
	"invalid dpop":           `{"status":{"code":16,"message":"the DPoP proof's htu is not the request's URL"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"DPoP realm=\"tokenwise\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof's htu is not the request's URL\", algs=\"ES256 EdDSA\""},"append":false}],"body":"{\"error\":\"invalid_dpop_proof\",\"error_description\":\"the DPoP proof's htu is not the request's URL\"}"}}`,
	"use nonce":              `{"status":{"code":16,"message":"the DPoP proof must carry the server's nonce"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"dpop-nonce","value":"n0nce"},"append":false},{"header":{"key":"www-authenticate","value":"DPoP realm=\"tokenwise\", error=\"use_dpop_nonce\", error_description=\"the DPoP proof must carry the server's nonce\", algs=\"ES256\""},"append":false}],"body":"{\"error\":\"use_dpop_nonce\",\"error_description\":\"the DPoP proof must carry the server's nonce\"}"}}`,
	"denied challenge":       `{"status":{"code":16,"message":"a bearer token is required"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"DPoP realm=\"tokenwise\", algs=\"ES256\""},"append":false}],"body":"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"}}`,
	"denied challenge token": `{"status":{"code":7},"deniedResponse":{"status":{"code":"Forbidden"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"insufficient_scope\""},"append":false}],"body":"{\"error\":\"insufficient_scope\"}"}}`,
	"rate limited":           `{"status":{"code":8,"message":"rate limit \"per-\\\"user\\\"\" exceeded"},"deniedResponse":{"status":{"code":"TooManyRequests"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"retry-after","value":"7"},"append":false},{"header":{"key":"ratelimit-policy","value":"\"per-\\\"user\\\"\";q=100;w=60"},"append":false},{"header":{"key":"ratelimit","value":"\"per-\\\"user\\\"\";r=0;t=120"},"append":false}],"body":"{\"error\":\"rate_limited\",\"error_description\":\"rate limit \\\"per-\\\\\\\"user\\\\\\\"\\\" exceeded\"}"}}`,
	"document":               `{"status":{"code":7,"message":"answered by tokenwise"},"deniedResponse":{"status":{"code":"OK"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false}],"body":"{\"resource\":\"https://api.test/\"}"}}`,
	"resource metadata 401":  `{"status":{"code":16,"message":"token has expired"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"invalid_token\", error_description=\"token has expired\", resource_metadata=\"https://api.test/.well-known/oauth-protected-resource\""},"append":false}],"body":"{\"error\":\"invalid_token\",\"error_description\":\"token has expired\"}"}}`,
	"resource metadata bare": `{"status":{"code":16,"message":"a bearer token is required"},"deniedResponse":{"status":{"code":"Unauthorized"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", resource_metadata=\"https://api.test/'x'\""},"append":false}],"body":"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"}}`,
	"allow with nonce":       `{"status":{},"okResponse":{"responseHeadersToAdd":[{"header":{"key":"x-a","value":"1"},"append":true},{"header":{"key":"dpop-nonce","value":"n0nce"},"append":false}]}}`,
	"resource metadata 403":  `{"status":{"code":7,"message":"no"},"deniedResponse":{"status":{"code":"Forbidden"},"headers":[{"header":{"key":"content-type","value":"application/json"},"append":false},{"header":{"key":"www-authenticate","value":"Bearer realm=\"tokenwise\", error=\"insufficient_scope\", error_description=\"no\""},"append":false}],"body":"{\"error\":\"insufficient_scope\",\"error_description\":\"no\"}"}}`,
}

// TestResponseGolden: every answer renders as the CheckResponse Envoy got
// before — the same headers in the same order with the same explicit
// append, the same gRPC status code and message, body and metadata.
func TestResponseGolden(t *testing.T) {
	for _, c := range answertest.Cases() {
		want := &authv3.CheckResponse{}
		if err := protojson.Unmarshal([]byte(responseGolden[c.Name]), want); err != nil {
			t.Fatalf("%s: golden: %v", c.Name, err)
		}
		got := Response(c.Answer)
		if !proto.Equal(got, want) {
			g, _ := protojson.Marshal(got)
			t.Errorf("%s:\n got %s\nwant %s", c.Name, g, responseGolden[c.Name])
		}
	}
}

// FuzzResponse renders arbitrary decisions' answers. The invariants: no
// panic; every deny has a non-OK gRPC status and a denied HTTP response
// (never an OK one), whatever status a policy chose; every allow is OK with
// an OK response; every header is sent with append explicitly set.
func FuzzResponse(f *testing.F) {
	f.Add(true, "reason", "x-h", "v", "", 0, false, "description")
	f.Add(false, "needs \"orders\"\r\n\\", "www-authenticate", "Basic", "", 418, true, "bad\r\nheader")
	f.Add(false, "\xff\xfe\x00", "content-type", "text/plain", "body", 200, true, "\x7f")
	f.Add(false, "", "", "", "", 599, false, "")
	f.Fuzz(func(t *testing.T, allowed bool, reason, hName, hValue, body string, status int, hadToken bool, description string) {
		d := policy.Decision{Allowed: allowed, Reason: reason, Body: body}
		if hName != "" && !strings.ContainsAny(hName, "\r\n\x00 ") && !strings.ContainsAny(hValue, "\r\n\x00") {
			d.Headers = []policy.Header{{Name: strings.ToLower(hName), Value: hValue}}
		}
		if status >= 100 && status <= 599 {
			d.HTTPStatus = status
		}
		if allowed {
			resp := Response(answer.Allow(d, answer.Upstream{Set: []policy.Header{{Name: "x-user", Value: "alice"}}, Remove: []string{"authorization"}}))
			if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil || resp.GetDeniedResponse() != nil {
				t.Fatalf("allow is not OK: %v", resp)
			}
			checkAppend(t, resp.GetOkResponse().GetHeaders())
			return
		}
		for name, a := range map[string]reply.Reply{
			"Denied":          answer.Denied(d, hadToken),
			"InvalidToken":    answer.InvalidToken(description),
			"InvalidRequest":  answer.InvalidRequest(description),
			"Unavailable":     answer.Unavailable(description),
			"InternalError":   answer.InternalError(description),
			"PayloadTooLarge": answer.PayloadTooLarge(description),
			"Denied no token": answer.Denied(policy.Decision{Reason: reason}, false),
			"Document":        answer.Document(body),
		} {
			resp := Response(a)
			if resp.GetStatus().GetCode() == int32(codes.OK) || resp.GetOkResponse() != nil || resp.GetDeniedResponse() == nil {
				t.Fatalf("%s: deny has OK status or no denied response: %v", name, resp)
			}
			if int(resp.GetDeniedResponse().GetStatus().GetCode()) != a.Status || resp.GetDeniedResponse().GetBody() != a.Body {
				t.Fatalf("%s: status or body differ from the answer's: %v", name, resp)
			}
			checkAppend(t, resp.GetDeniedResponse().GetHeaders())
		}
	})
}

func checkAppend(t *testing.T, headers []*corev3.HeaderValueOption) {
	t.Helper()
	for _, h := range headers {
		if h.GetAppend() == nil {
			t.Fatalf("append unset on %s: Envoy would append beside the client's header", h.GetHeader().GetKey())
		}
	}
}

// BenchmarkResponseAllow builds and renders the allow answer of an object
// decision with headers plus a claim header and the Authorization removal,
// as `reuse` does: what answer.Allow alone did when it built the
// CheckResponse itself.
func BenchmarkResponseAllow(b *testing.B) {
	d := policy.Decision{Allowed: true, Headers: []policy.Header{{Name: "x-scopes", Value: "orders:read payments:write"}, {Name: "x-tenant", Value: "acme"}}}
	up := answer.Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"authorization"}}
	b.ReportAllocs()
	for b.Loop() {
		if r := Response(answer.Allow(d, up)); r.GetOkResponse() == nil {
			b.Fatal("not an allow")
		}
	}
}

// BenchmarkResponseInvalidToken builds and renders the 401 for a token that
// failed verification.
func BenchmarkResponseInvalidToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if r := Response(answer.InvalidToken("token is expired")); r.GetDeniedResponse() == nil {
			b.Fatal("not a deny")
		}
	}
}
