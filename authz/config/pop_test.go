package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const popIssuer = `
issuers:
  - name: corp
    issuer: https://idp.example.com/
    jwks_url: https://idp.example.com/jwks.json
`

func TestProofOfPossessionDefaults(t *testing.T) {
	c, err := Parse([]byte(popIssuer))
	if err != nil {
		t.Fatal(err)
	}
	is := c.Issuers[0]
	if is.ProofOfPossession != ProofOptional || is.DPoPProofLifetime != 60*time.Second || is.DPoPNonce ||
		!slices.Equal(is.DPoPAlgorithms, DefaultDPoPAlgorithms) {
		t.Fatalf("defaults: %+v", is)
	}
}

func TestProofOfPossessionSettings(t *testing.T) {
	c, err := Parse([]byte(popIssuer + `    proof_of_possession: required
    dpop_proof_lifetime: 30s
    dpop_algorithms: [ES256]
    dpop_nonce: true
dpop:
  nonce_secret: 0123456789abcdef0123456789abcdef
  nonce_lifetime: 2m
`))
	if err != nil {
		t.Fatal(err)
	}
	is := c.Issuers[0]
	if is.ProofOfPossession != ProofRequired || is.DPoPProofLifetime != 30*time.Second || !is.DPoPNonce ||
		!slices.Equal(is.DPoPAlgorithms, []string{"ES256"}) || c.DPoP.NonceLifetime != 2*time.Minute {
		t.Fatalf("settings: %+v %+v", is, c.DPoP)
	}
}

func TestProofOfPossessionFaults(t *testing.T) {
	for extra, want := range map[string]string{
		"    proof_of_possession: always\n":                   `issuers[0] (corp): proof_of_possession "always": want optional or required`,
		"    dpop_algorithms: [HS256]\n":                      `issuers[0] (corp): dpop_algorithms: "HS256" not allowed`,
		"    dpop_algorithms: [none]\n":                       `dpop_algorithms: "none" not allowed`,
		"    dpop_proof_lifetime: -1s\n":                      "dpop_proof_lifetime must not be negative",
		"    dpop_nonce: true\n":                              "dpop_nonce needs dpop.nonce_secret",
		"    dpop_nonce: true\ndpop: {nonce_secret: short}\n": "dpop_nonce needs dpop.nonce_secret",
	} {
		_, err := Parse([]byte(popIssuer + extra))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v; want %q", extra, err, want)
		}
	}
}
