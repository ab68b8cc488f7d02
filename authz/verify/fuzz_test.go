package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// FuzzVerify runs arbitrary strings through the whole Verify path against a
// real key set (RS256, ES256 and EdDSA keys from a live JWKS). Verify must
// never panic, every refusal must be a *Error with a reason and a
// description that does not echo the token, and nothing but a token the
// issuer really signed may pass: the fuzzer cannot forge a signature, so an
// accepted token's signed content must be one the issuer minted.
func FuzzVerify(f *testing.F) {
	iss := verifytest.NewIssuer(f)
	claims := map[string]any{"sub": "alice", "jti": "j1", "scope": "a b", "aud": "orders", "exp": time.Now().Add(24 * time.Hour).Unix()}
	minted := map[string]bool{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "PS256"} {
		for _, hdr := range []map[string]any{nil, {"kid": nil}, {"typ": "at+jwt"}} {
			raw := iss.MintWith(alg, hdr, claims)
			minted[raw[:strings.LastIndexByte(raw, '.')]] = true
			f.Add(raw)
		}
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.",
		`eyJhbGciOiJSUzI1NiIsImFsZyI6IlJTMjU2In0.e30.AA`, strings.Repeat("A", 100) + ".." + strings.Repeat("_", 10)} {
		f.Add(s)
	}
	v := readyVerifier(f, issuerCfg(iss, "corp", func(c *config.Issuer) {
		c.MinRefreshInterval = time.Hour // unknown kids must not turn the fuzzer into a JWKS load test
		c.Leeway = time.Minute
	}))
	f.Fuzz(func(t *testing.T, raw string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		tok, err := v.Verify(ctx, raw)
		if err == nil {
			if !minted[raw[:strings.LastIndexByte(raw, '.')]] {
				t.Fatalf("accepted a token the issuer never signed: %q", raw)
			}
			if tok.Issuer != "corp" {
				t.Fatalf("issuer = %q", tok.Issuer)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Reason == "" || e.Description == "" {
			t.Fatalf("error %T %v is not a *Error with reason and description", err, err)
		}
		if len(raw) >= 8 && strings.Contains(e.Description, raw) {
			t.Fatalf("description %q echoes the token", e.Description)
		}
	})
}

// FuzzCheckJSON compares the duplicate-member check with encoding/json: it
// must never panic, and whatever it passes must be valid JSON.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, `{"a":1}{"a":1}`,
		`{"\u0061":1,"a":2}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `{"a":[1,2,{"c":null}],"b":"a"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSON(data) == nil && !jsonValid(data) {
			t.Fatalf("checkJSON passed invalid JSON %q", data)
		}
	})
}
