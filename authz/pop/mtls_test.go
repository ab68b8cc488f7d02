package pop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"github.com/golang-jwt/jwt/v5"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testCert returns a self-signed client certificate, URL-encoded as Envoy
// forwards it, and its x5t#S256.
func testCert(t *testing.T) (encoded, x5t string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return envoyEscape(string(p)), base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestCertificateBinding(t *testing.T) {
	cert, x5t := testCert(t)
	otherCert, _ := testCert(t)
	cnf := map[string]any{"x5t#S256": x5t}
	for _, tc := range []struct {
		name, cert, reason string
	}{
		{"matching", cert, ""},
		{"matching, form-encoded", formEscape(cert), ""},
		{"other certificate", otherCert, ReasonCertMismatch},
		{"no certificate", "", ReasonCertMissing},
		{"not PEM", "garbage", ReasonCertMalformed},
		{"bad escape", "%zz", ReasonCertMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest()
			req.Certificate = tc.cert
			proof, err := testChecker(Options{}).Check(context.Background(), req, "Bearer", testToken, cnf, testPolicy())
			if tc.reason == "" {
				if err != nil || proof != ProofMTLS {
					t.Fatalf("Check = %q, %v; want mtls", proof, err)
				}
				return
			}
			wantErr(t, err, KindInvalidToken, tc.reason)
		})
	}
}

// TestCertificateAndKeyBound: a token bound both ways needs both proofs.
func TestCertificateAndKeyBound(t *testing.T) {
	cert, x5t := testCert(t)
	key := newKey(t)
	cnf := map[string]any{"x5t#S256": x5t, "jkt": jkt(t, key)}
	raw := validParts(t, key).sign(t, signES256, key)
	req := testRequest(raw)
	_, err := testChecker(Options{}).Check(context.Background(), req, "DPoP", testToken, cnf, testPolicy())
	wantErr(t, err, KindInvalidToken, ReasonCertMissing)
	req.Certificate = cert
	if proof, err := testChecker(Options{}).Check(context.Background(), req, "DPoP", testToken, cnf, testPolicy()); err != nil || proof != ProofDPoP {
		t.Fatalf("Check = %q, %v", proof, err)
	}
}

var signES256 = jwt.SigningMethodES256

// envoyEscape encodes a PEM as Envoy does for attributes.source.certificate.
func envoyEscape(pem string) string {
	return strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(pem)
}

// formEscape re-encodes an Envoy-encoded certificate as a form would.
func formEscape(encoded string) string {
	decoded, _ := url.PathUnescape(encoded)
	return url.QueryEscape(decoded)
}
