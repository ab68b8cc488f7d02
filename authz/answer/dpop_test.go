package answer

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
)

func TestDPoPAnswers(t *testing.T) {
	algs := []string{"ES256", "EdDSA"}
	status, headers, body := denied(t, InvalidDPoPProof("the DPoP proof's htu is not the request's URL", algs))
	if want := `DPoP realm="tokenwise", error="invalid_dpop_proof", error_description="the DPoP proof's htu is not the request's URL", algs="ES256 EdDSA"`; status != 401 || headers["www-authenticate"] != want {
		t.Errorf("invalid proof: %d %q; want 401 %q", status, headers["www-authenticate"], want)
	}
	if body["error"] != "invalid_dpop_proof" || headers["content-type"] != "application/json" {
		t.Errorf("invalid proof body: %v %v", body, headers)
	}

	status, headers, body = denied(t, UseDPoPNonce("the DPoP proof must carry the server's nonce", "n0nce", algs))
	if want := `DPoP realm="tokenwise", error="use_dpop_nonce", error_description="the DPoP proof must carry the server's nonce", algs="ES256 EdDSA"`; status != 401 || headers["www-authenticate"] != want {
		t.Errorf("use nonce: %d %q", status, headers["www-authenticate"])
	}
	if headers["dpop-nonce"] != "n0nce" || body["error"] != "use_dpop_nonce" {
		t.Errorf("use nonce: headers %v body %v", headers, body)
	}
}

func TestDeniedChallenge(t *testing.T) {
	www := DPoPChallenge("", "", []string{"ES256"})
	if www != `DPoP realm="tokenwise", algs="ES256"` {
		t.Fatalf("bare DPoP challenge %q", www)
	}
	_, headers, _ := denied(t, DeniedChallenge(policy.Decision{}, false, www))
	if headers["www-authenticate"] != www {
		t.Errorf("no token: %q", headers["www-authenticate"])
	}
	_, headers, _ = denied(t, DeniedChallenge(policy.Decision{}, true, www))
	if headers["www-authenticate"] != `Bearer realm="tokenwise", error="insufficient_scope"` {
		t.Errorf("with a token the challenge stays: %q", headers["www-authenticate"])
	}
	own := policy.Decision{Headers: []policy.Header{{Name: "WWW-Authenticate", Value: "Basic"}}}
	_, headers, _ = denied(t, DeniedChallenge(own, false, www))
	if headers["www-authenticate"] != "Basic" {
		t.Errorf("the policy's own challenge wins: %q", headers["www-authenticate"])
	}
}
