package source

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

// TestFindReportsTheScheme: proof of possession needs to know whether a
// token came as Bearer or DPoP (or from a cookie, with no scheme at all).
func TestFindReportsTheScheme(t *testing.T) {
	f := New(config.Token{Header: "authorization", Cookie: "session"})
	for _, tc := range []struct {
		name    string
		headers map[string]string
		token   string
		scheme  string
		invalid bool
	}{
		{"bearer", map[string]string{"authorization": "Bearer " + jwt}, jwt, SchemeBearer, false},
		{"dpop", map[string]string{"authorization": "DPoP " + jwt}, jwt, SchemeDPoP, false},
		{"dpop any case", map[string]string{"authorization": "dpop " + jwt}, jwt, SchemeDPoP, false},
		{"cookie", map[string]string{"cookie": "session=" + jwt}, jwt, "", false},
		{"empty dpop", map[string]string{"authorization": "DPoP "}, "", "", true},
		{"dpop and bearer joined", map[string]string{"authorization": "DPoP " + jwt + ", Bearer " + jwt}, "", "", true},
		{"dpop and cookie", map[string]string{"authorization": "DPoP " + jwt, "cookie": "session=" + jwt}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := f.Find(toRequest(checkReq("/", tc.headers)))
			if tc.invalid {
				if err == nil {
					t.Fatalf("Find = %+v; want an error", found)
				}
				return
			}
			if err != nil || found.Token != tc.token || found.Scheme != tc.scheme {
				t.Fatalf("Find = %+v, %v; want %q, %q", found, err, tc.token, tc.scheme)
			}
		})
	}
}
