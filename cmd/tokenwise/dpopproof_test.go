package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/pop"
)

func writeKeyFile(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dpop.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDPoPProofCommand(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ed)
	for name, tc := range map[string]struct {
		file string
		pub  any
	}{
		"EC (SEC 1)":        {writeKeyFile(t, "EC PRIVATE KEY", sec1), ec.Public()},
		"Ed25519 (PKCS #8)": {writeKeyFile(t, "PRIVATE KEY", pkcs8), ed.Public()},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run([]string{"dpop-proof", "--key", tc.file, "--jkt"}, &out, io.Discard); code != 0 {
				t.Fatalf("--jkt: exit %d", code)
			}
			jkt := strings.TrimSpace(out.String())
			if want, _ := pop.Thumbprint(tc.pub); jkt != want {
				t.Fatalf("--jkt = %q; want %q", jkt, want)
			}
			out.Reset()
			const token = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"
			if code := run([]string{"dpop-proof", "--key", tc.file, "--method", "POST", "--url", "https://api.example.com/pay?x=1", "--token", token}, &out, io.Discard); code != 0 {
				t.Fatalf("exit %d", code)
			}
			req := pop.Request{Method: "POST", Scheme: "https", Authority: "api.example.com", Path: "/pay", Proofs: []string{strings.TrimSpace(out.String())}}
			policy := pop.PolicyFor(config.Issuer{})
			if _, err := pop.New(pop.Options{}).Check(context.Background(), req, "DPoP", token, map[string]any{"jkt": jkt}, policy); err != nil {
				t.Fatalf("the printed proof is refused: %v", err)
			}
		})
	}
}

func TestDPoPProofCommandFaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"dpop-proof", "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--key") {
		t.Errorf("--help: exit %d\n%s", code, out.String())
	}
	notKey := writeKeyFile(t, "CERTIFICATE", []byte("x"))
	for _, args := range [][]string{
		{"dpop-proof", "--url", "https://a.example/"},
		{"dpop-proof", "--key", notKey, "--url", "https://a.example/"},
		{"dpop-proof", "--key", filepath.Join(t.TempDir(), "missing.pem"), "--url", "https://a.example/"},
	} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 1 || !strings.HasPrefix(errOut.String(), "tokenwise: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}
