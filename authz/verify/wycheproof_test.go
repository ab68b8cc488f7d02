package verify

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
)

// The Wycheproof JWS and JWK vectors (C2SP/wycheproof, kept gzipped in
// testdata/wycheproof with their license) run through the verifier's own stages: split (size,
// shape, strict base64, duplicate members), the issuer's header rules, and
// checkSignature with the key found in a JWKS that a real httptest server
// serves and keySource fetches and filters. Only the claim checks are left
// out: the vectors' payloads ("foo", empty, zero bytes, RFC 7520's text) are
// not claim sets, so they carry no iss to pick an issuer by and no exp.
//
// Expectations: every "invalid" vector is refused; every HMAC vector is
// refused, valid or not (tokenwise never accepts HMAC, and drops oct keys);
// every "valid" asymmetric vector is accepted, except the ones listed in
// wycheproofRefusedValid with the reason tokenwise refuses them.

// wycheproofRefusedValid lists valid vectors tokenwise refuses on purpose.
var wycheproofRefusedValid = map[int]string{
	// RFC 7520 §4.2 (Figure 20): the token says PS384 but the JWK says
	// "alg": "PS256". tokenwise requires a key's alg, when present, to equal
	// the token's (issue 4, key hygiene), so the key does not sign this token.
	346: "key alg PS256, token alg PS384",
	350: "key alg PS256, token alg PS384",
	// RFC 7520 §4.3 (Figure 27): the JWK says "alg": "ES521", which is not a
	// registered JWA algorithm (the token says ES512). A key whose alg is not
	// one the issuer allows is dropped when the JWKS loads.
	347: `key alg "ES521" is not an algorithm`,
	351: `key alg "ES521" is not an algorithm`,
}

type wycheproofFile struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			JWS     string   `json:"jws"`
			Result  string   `json:"result"`
			Flags   []string `json:"flags"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func loadWycheproof(t *testing.T, name string) *wycheproofFile {
	t.Helper()
	file, err := os.Open(filepath.Join("testdata", "wycheproof", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	unzipped, err := gzip.NewReader(file)
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.NewDecoder(unzipped).Decode(&f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// wycheproofVerifier serves keys (a JWK or a JWK set) as an issuer's JWKS
// and returns that issuer once its JWKS has loaded.
func wycheproofVerifier(t *testing.T, keys json.RawMessage) *issuer {
	t.Helper()
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	body := []byte(keys)
	if json.Unmarshal(keys, &probe) != nil || probe.Keys == nil {
		body = []byte(`{"keys":[` + string(keys) + `]}`)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	v := readyVerifier(t, config.Issuer{
		Name: "wycheproof", Issuer: "https://wycheproof.example", JWKSURL: srv.URL,
		Algorithms: config.DefaultAlgorithms, MinRefreshInterval: time.Hour,
	})
	return v.all[0]
}

// verifySignatureStages runs every stage of Verify that does not read claims.
func verifySignatureStages(v *Verifier, is *issuer, raw string) error {
	c, err := split(raw, v.maxBytes)
	if err != nil {
		return err
	}
	if err := is.checkHeader(c.header); err != nil {
		return err
	}
	if err := is.checkSignature(context.Background(), c); err != nil {
		return err
	}
	return nil
}

func runWycheproof(t *testing.T, name string, want int) {
	f := loadWycheproof(t, name)
	count, accepted := 0, 0
	for _, g := range f.TestGroups {
		keys := g.Public
		if len(keys) == 0 {
			keys = g.Private // HMAC groups have only the secret
		}
		is := wycheproofVerifier(t, keys)
		v := &Verifier{maxBytes: MaxTokenBytes}
		hmac := strings.Contains(string(keys), `"oct"`)
		for _, tc := range g.Tests {
			count++
			err := verifySignatureStages(v, is, tc.JWS)
			alg := headerAlg(tc.JWS)
			label := fmt.Sprintf("tc %d (%s, %s, %s, %v)", tc.TcID, g.Comment, tc.Comment, alg, tc.Flags)
			switch {
			case hmac || strings.HasPrefix(alg, "HS"):
				if err == nil {
					t.Errorf("%s: HMAC vector accepted", label)
				}
			case tc.Result == "invalid":
				if err == nil {
					t.Errorf("%s: invalid vector accepted", label)
				}
			case wycheproofRefusedValid[tc.TcID] != "":
				if err == nil {
					t.Errorf("%s: accepted, but the test says tokenwise refuses it (%s)", label, wycheproofRefusedValid[tc.TcID])
				}
			case tc.Result == "valid" && slices.Contains(config.DefaultAlgorithms, alg):
				if err != nil {
					t.Errorf("%s: valid vector refused: %v", label, err)
				} else {
					accepted++
				}
			default:
				t.Errorf("%s: result %q with alg %q has no expectation", label, tc.Result, alg)
			}
		}
	}
	if count != f.NumberOfTests || count != want {
		t.Fatalf("ran %d vectors; the file says %d, the test expects %d", count, f.NumberOfTests, want)
	}
	t.Logf("%d vectors, %d valid asymmetric ones accepted", count, accepted)
}

// headerAlg reads alg from a vector's header without trusting it ("" if unreadable).
func headerAlg(raw string) string {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := decodeB64(seg)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Alg
}

func TestWycheproofJWS(t *testing.T) { runWycheproof(t, "json_web_signature_test.json", 401) }

func TestWycheproofJWK(t *testing.T) { runWycheproof(t, "json_web_key_test.json", 26) }
