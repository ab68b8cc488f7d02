package examples

import (
	"os"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tokenwise/tokenwise/authz/config"
)

// TestMTLSExampleSendsTheClientCertificate: certificate-bound tokens need
// Envoy to require a client certificate and to forward it to tokenwise.
func TestMTLSExampleSendsTheClientCertificate(t *testing.T) {
	data, err := os.ReadFile("envoy-mtls/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	var authz, tls int
	err = everyMessage(b, func(m proto.Message) {
		switch m := m.(type) {
		case *extauthzv3.ExtAuthz:
			authz++
			if !m.GetIncludePeerCertificate() {
				t.Error("ext_authz lacks include_peer_certificate: true")
			}
		case *tlsv3.DownstreamTlsContext:
			tls++
			if !m.GetRequireClientCertificate().GetValue() {
				t.Error("the listener does not require a client certificate")
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if authz != 1 || tls != 1 {
		t.Fatalf("found %d ext_authz filters and %d TLS contexts, want one each", authz, tls)
	}
}

func TestMTLSExampleRequiresProof(t *testing.T) {
	cfg := loadConfig(t, "envoy-mtls/tokenwise.yaml")
	if cfg.Issuers[0].ProofOfPossession != config.ProofRequired {
		t.Errorf("proof_of_possession = %q", cfg.Issuers[0].ProofOfPossession)
	}
	runPolicyTests(t, "envoy-mtls/policies", 3)
}
