package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/pop"
)

// oidcProviderVersion is the node-oidc-provider the acceptance test runs.
const oidcProviderVersion = "9.13.3"

// needTool fails the test under CI and skips it elsewhere when a tool the
// acceptance test needs is missing.
func needTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// startOIDCProvider runs node-oidc-provider (installed with npm into the
// user's cache on first use) and returns its issuer URL.
func startOIDCProvider(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needTool(t, "node is not installed (apt-get install nodejs npm)")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tokenwise-test", "oidc-provider@"+oidcProviderVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		out, err := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "oidc-provider@"+oidcProviderVersion).CombinedOutput()
		if err != nil {
			needTool(t, "npm install oidc-provider: "+err.Error()+"\n"+string(out))
		}
	}
	// ES modules resolve packages from the script's own directory upwards.
	script, err := os.ReadFile("testdata/oidc-provider/provider.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "provider.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "provider.mjs"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				issuer <- rest
			}
		}
	}()
	select {
	case iss := <-issuer:
		return iss
	case <-time.After(30 * time.Second):
		t.Fatal("node-oidc-provider did not start within 30s")
	}
	return ""
}

// providerToken asks the provider for a DPoP-bound access token by client
// credentials, proving key at the token endpoint (RFC 9449 §5).
func providerToken(t *testing.T, issuer string, key *ecdsa.PrivateKey) string {
	t.Helper()
	proof, err := pop.Sign(key, pop.ProofParams{Method: "POST", URL: issuer + "/token"})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "resource": {"https://api.example.com"}}
	req, err := http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("svc", "acceptance-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.TokenType != "DPoP" {
		t.Fatalf("token endpoint: %d %+v %v", resp.StatusCode, body, err)
	}
	return body.AccessToken
}

// TestAcceptanceWithNodeOIDCProvider: a real provider's DPoP-bound tokens
// (node-oidc-provider, which binds tokens by default) work with a fresh
// proof from their key and with nothing else.
func TestAcceptanceWithNodeOIDCProvider(t *testing.T) {
	issuer := startOIDCProvider(t)
	h := startPolicy(t, popPolicy, func(c *config.Config) {
		// The issuer's keys come from its discovery document.
		c.Issuers = []config.Issuer{{
			Name: "node", Issuer: issuer, Audiences: []string{"orders-api"}, Typ: "at+jwt",
			Algorithms: config.DefaultAlgorithms, Leeway: time.Second, RefreshInterval: time.Minute,
			FetchTimeout: 5 * time.Second, MinRefreshInterval: 100 * time.Millisecond,
		}}
	})
	h.waitReady()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &dpopClient{t: t, key: key, token: providerToken(t, issuer, key)}

	a := read(h.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{})))))
	if !a.allowed || a.headers["x-proof"] != "dpop" || a.headers["x-user-id"] != "svc" {
		t.Fatalf("the provider's token with a fresh proof: %+v", a)
	}
	proof := c.proof(pop.ProofParams{})
	for name, headers := range map[string]map[string]string{
		"as Bearer":           bearer(c.token),
		"without a proof":     {"authorization": "DPoP " + c.token},
		"another key's proof": c.request(mustSign(t, mustKey(t), pop.ProofParams{Method: "GET", URL: orderURL, Token: c.token})),
	} {
		if a := read(h.check(envoyRequest("GET", "/orders/1", headers))); a.allowed || a.status != 401 {
			t.Errorf("%s: %+v", name, a)
		}
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", c.request(proof)))); !a.allowed {
		t.Fatalf("a fresh proof: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", c.request(proof)))); a.allowed || a.errorField() != "invalid_dpop_proof" {
		t.Errorf("the proof replayed: %+v", a)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
