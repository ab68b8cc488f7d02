package source

import (
	"errors"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

func TestFindScheme(t *testing.T) {
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
		{"cookie", map[string]string{"cookie": "session=" + jwt}, jwt, SchemeNone, false},
		{"empty dpop", map[string]string{"authorization": "DPoP "}, "", "", true},
		{"dpop not a b64token", map[string]string{"authorization": "DPoP a,b"}, "", "", true},
		{"dpop and bearer joined", map[string]string{"authorization": "DPoP " + jwt + ", Bearer " + jwt}, "", "", true},
		{"dpop and cookie", map[string]string{"authorization": "DPoP " + jwt, "cookie": "session=" + jwt}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, scheme, err := f.FindScheme(toRequest(checkReq("/", tc.headers)))
			if tc.invalid {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("FindScheme = %q, %q, %v; want invalid_request", token, scheme, err)
				}
				return
			}
			if err != nil || token != tc.token || scheme != tc.scheme {
				t.Fatalf("FindScheme = %q, %q, %v; want %q, %q", token, scheme, err, tc.token, tc.scheme)
			}
		})
	}
}
