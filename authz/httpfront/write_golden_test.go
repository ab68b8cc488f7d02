package httpfront

import (
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/answer/answertest"
)

// writeGolden is each case's HTTP response (status, headers sorted by name,
// body), recorded when Write still converted Envoy's CheckResponse (the
// nonce case as the server's DPoP-Nonce option was written then): the
// proxies must see the same answers after Write took tokenwise's own.
var writeGolden = map[string]string{
	"allow full":             `200	Authorization=[""] Cookie=["a=b"] X-Claim=[""] X-Debug=[""] X-Envoy-Auth-Headers-To-Remove=["x-debug,x-claim,authorization"] X-Served-By=["tokenwise" "again"] X-Tier=["gold" "vip"] X-User-Id=["alice"]	""`,
	"allow bare":             `200		""`,
	"allow upstream only":    `200	Authorization=[""] X-Envoy-Auth-Headers-To-Remove=["authorization"] X-User-Id=["alice"]	""`,
	"invalid request":        `400	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"invalid_request\", error_description=\"the request carries more than one token\""]	"{\"error\":\"invalid_request\",\"error_description\":\"the request carries more than one token\"}"`,
	"invalid token":          `401	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"invalid_token\", error_description=\"token is 'expired'''<&>\""]	"{\"error\":\"invalid_token\",\"error_description\":\"token is \\\"expired\\\"\\r\\n\\u003c\\u0026\\u003e\"}"`,
	"denied no token":        `401	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\""]	"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"`,
	"denied with token":      `403	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"insufficient_scope\", error_description=\"needs orders:write\""]	"{\"error\":\"insufficient_scope\",\"error_description\":\"needs orders:write\"}"`,
	"denied 422":             `422	Content-Type=["application/json"]	"{\"error\":\"access_denied\",\"error_description\":\"amount too large\"}"`,
	"denied 401 with token":  `401	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\""]	"{\"error\":\"unauthorized\",\"error_description\":\"sign in again\"}"`,
	"denied own body":        `402	X-Reason=["unpaid" "twice"]	"pay first"`,
	"denied own challenge":   `403	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"x\", scope=\"a\""]	"{\"error\":\"insufficient_scope\"}"`,
	"unavailable":            `503	Content-Type=["application/json"]	"{\"error\":\"temporarily_unavailable\",\"error_description\":\"the use-limit store is unavailable\"}"`,
	"too large":              `413	Content-Type=["application/json"]	"{\"error\":\"invalid_request\",\"error_description\":\"the request body is too complex to authorize\"}"`,
	"internal":               `500	Content-Type=["application/json"]	"{\"error\":\"server_error\",\"error_description\":\"policy evaluation failed\"}"`,
	"invalid dpop":           `401	Content-Type=["application/json"] Www-Authenticate=["DPoP realm=\"tokenwise\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof's htu is not the request's URL\", algs=\"ES256 EdDSA\""]	"{\"error\":\"invalid_dpop_proof\",\"error_description\":\"the DPoP proof's htu is not the request's URL\"}"`,
	"use nonce":              `401	Content-Type=["application/json"] Dpop-Nonce=["n0nce"] Www-Authenticate=["DPoP realm=\"tokenwise\", error=\"use_dpop_nonce\", error_description=\"the DPoP proof must carry the server's nonce\", algs=\"ES256\""]	"{\"error\":\"use_dpop_nonce\",\"error_description\":\"the DPoP proof must carry the server's nonce\"}"`,
	"denied challenge":       `401	Content-Type=["application/json"] Www-Authenticate=["DPoP realm=\"tokenwise\", algs=\"ES256\""]	"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"`,
	"denied challenge token": `403	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"insufficient_scope\""]	"{\"error\":\"insufficient_scope\"}"`,
	"rate limited":           `429	Content-Type=["application/json"] Ratelimit=["\"per-\\\"user\\\"\";r=0;t=120"] Ratelimit-Policy=["\"per-\\\"user\\\"\";q=100;w=60"] Retry-After=["7"]	"{\"error\":\"rate_limited\",\"error_description\":\"rate limit \\\"per-\\\\\\\"user\\\\\\\"\\\" exceeded\"}"`,
	"document":               `200	Content-Type=["application/json"]	"{\"resource\":\"https://api.test/\"}"`,
	"resource metadata 401":  `401	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"invalid_token\", error_description=\"token has expired\", resource_metadata=\"https://api.test/.well-known/oauth-protected-resource\""]	"{\"error\":\"invalid_token\",\"error_description\":\"token has expired\"}"`,
	"resource metadata bare": `401	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", resource_metadata=\"https://api.test/'x'\""]	"{\"error\":\"unauthorized\",\"error_description\":\"a bearer token is required\"}"`,
	"resource metadata 403":  `403	Content-Type=["application/json"] Www-Authenticate=["Bearer realm=\"tokenwise\", error=\"insufficient_scope\", error_description=\"no\""]	"{\"error\":\"insufficient_scope\",\"error_description\":\"no\"}"`,
	"allow with nonce":       `200	Dpop-Nonce=["n0nce"] X-A=["1"]	""`,
}

func TestWriteGolden(t *testing.T) {
	for _, c := range answertest.Cases() {
		w := httptest.NewRecorder()
		Write(w, c.Answer, c.Name == "document")
		var hs []string
		for _, k := range slices.Sorted(maps.Keys(w.Header())) {
			hs = append(hs, fmt.Sprintf("%s=%q", k, w.Header()[k]))
		}
		got := fmt.Sprintf("%d\t%s\t%q", w.Code, strings.Join(hs, " "), w.Body.String())
		if want, ok := writeGolden[c.Name]; !ok || got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.Name, got, want)
		}
	}
}
