package pop

import (
	"context"
	"testing"
)

// FuzzProof feeds arbitrary DPoP headers to the whole check: it must never
// panic, and must never accept a proof that was not signed by the bound key.
func FuzzProof(f *testing.F) {
	key := newKey(f)
	good := validParts(f, key).sign(f, signES256, key)
	f.Add(good)
	f.Add("e30.e30.")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.e30.AA")
	f.Add(good + "," + good)
	cnf := map[string]any{"jkt": jkt(f, key)}
	f.Fuzz(func(t *testing.T, raw string) {
		c := testChecker(Options{})
		proof, err := c.Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy())
		if err == nil && (proof != ProofDPoP || raw != good) {
			t.Fatalf("accepted a proof the key did not sign: %q", raw)
		}
	})
}

// FuzzNormalizeURL: normalising is idempotent and never panics.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://a.example/b/../c?d", "HTTP://[::1]:80/%7e", "https://x/%2e%2E/./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := NormalizeURL(raw)
		if err != nil {
			return
		}
		again, err := NormalizeURL(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeURL(%q) = %q, then %q, %v", raw, n, again, err)
		}
	})
}
