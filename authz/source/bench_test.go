package source

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

// benchToken is RS256-sized: the finder's cost grows with the token's length.
var benchToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0." +
	"eyJhdWQiOiJvcmRlcnMiLCJleHAiOjE5MDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwiaXNzIjoiaHR0cHM6Ly9pZC5leGFtcGxlIiwianRpIjoiMDEyMzQ1Njc4OWFiY2RlZiIsInNjb3BlIjoib3JkZXJzOnJlYWQiLCJzdWIiOiJhbGljZSJ9." +
	"c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl" +
	"c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl" +
	"c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"

// benchHeaders are the headers Envoy sends for a typical API call.
func benchHeaders() map[string]string {
	return map[string]string{
		":authority": "api.example.com", ":method": "GET", ":path": "/orders/42", ":scheme": "https",
		"accept": "application/json", "accept-encoding": "gzip, deflate, br", "user-agent": "curl/8.5.0",
		"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https",
		"x-request-id":  "5f0c7b8e-3a3c-4c9e-9b1a-1b2c3d4e5f60",
		"authorization": "Bearer " + benchToken,
	}
}

// BenchmarkFind is token extraction from the Authorization header, with
// the default configuration (header only).
func BenchmarkFind(b *testing.B) {
	f := New(config.Default().Token)
	req := toRequest(checkReq("/orders/42", benchHeaders()))
	b.ReportAllocs()
	for b.Loop() {
		if got, err := f.Find(req); err != nil || got.Token != benchToken {
			b.Fatalf("Find = %.10q, %v", got.Token, err)
		}
	}
}

// BenchmarkFindAllSources looks in the header, a cookie and the query, as
// a configuration with every source does.
func BenchmarkFindAllSources(b *testing.B) {
	f := New(config.Token{Header: "authorization", Cookie: "session", QueryParameter: "access_token"})
	h := benchHeaders()
	h["cookie"] = "theme=dark; lang=en"
	req := toRequest(checkReq("/orders/42?view=full", h))
	b.ReportAllocs()
	for b.Loop() {
		if got, err := f.Find(req); err != nil || got.Token != benchToken {
			b.Fatalf("Find = %.10q, %v", got.Token, err)
		}
	}
}
