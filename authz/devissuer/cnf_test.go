package devissuer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestMintsBoundTokens: jkt= and x5t= bind the minted token through cnf.
func TestMintsBoundTokens(t *testing.T) {
	iss, err := New("http://127.0.0.1", "api")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.MintHandler())
	defer srv.Close()
	const thumb = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	get := func(query string) (int, string) {
		resp, err := http.Get(srv.URL + "/?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for query, want := range map[string]map[string]any{
		"jkt=" + thumb: {"jkt": thumb},
		"x5t=" + thumb: {"x5t#S256": thumb},
	} {
		status, raw := get(query)
		if status != 200 {
			t.Fatalf("%s: %d %s", query, status, raw)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
			t.Fatal(err)
		}
		cnf, _ := claims["cnf"].(map[string]any)
		if len(cnf) != 1 || cnf[firstKey(want)] != thumb {
			t.Errorf("%s: cnf = %v; want %v", query, claims["cnf"], want)
		}
	}
	if status, _ := get("jkt=not-a-thumbprint"); status != 400 {
		t.Errorf("a malformed jkt: status %d; want 400", status)
	}
	_, raw := get("sub=bob")
	claims := jwt.MapClaims{}
	_, _, _ = jwt.NewParser().ParseUnverified(raw, claims)
	if _, ok := claims["cnf"]; ok {
		t.Error("an unbound token carries cnf")
	}
}

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}
