package pop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
)

// TestThumbprintRFC7638 is the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	raw := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	k, err := parseJWK([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; k.thumbprint != want {
		t.Fatalf("thumbprint %s; want %s", k.thumbprint, want)
	}
}

func TestParseJWKRefuses(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := PublicJWK(ec.Public())
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, _ := PublicJWK(small.Public())
	mod := func(f func(m map[string]any)) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		f(m)
		return m
	}
	for name, jwk := range map[string]any{
		"private d":       mod(func(m map[string]any) { m["d"] = "AAAA" }),
		"unknown kty":     mod(func(m map[string]any) { m["kty"] = "oct" }),
		"unknown curve":   mod(func(m map[string]any) { m["crv"] = "secp256k1" }),
		"short x":         mod(func(m map[string]any) { m["x"] = "AAAA" }),
		"padded x":        mod(func(m map[string]any) { m["x"] = m["x"].(string) + "=" }),
		"off the curve":   mod(func(m map[string]any) { m["y"] = m["x"] }),
		"RSA 1024 bits":   smallJWK,
		"not an object":   "jwk",
		"Ed448":           map[string]any{"kty": "OKP", "crv": "Ed448", "x": "AAAA"},
		"RSA leading 0":   map[string]any{"kty": "RSA", "n": "AAEC", "e": "AQAB"},
		"RSA even expon.": map[string]any{"kty": "RSA", "n": smallJWK["n"], "e": "Ag"},
	} {
		raw, _ := json.Marshal(jwk)
		if _, err := parseJWK(raw); err == nil {
			t.Errorf("%s: parseJWK accepted %s", name, raw)
		}
	}
}
