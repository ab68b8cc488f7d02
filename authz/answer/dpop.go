package answer

import (
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// RFC 9449 §7.1 and §9 error codes of the DPoP scheme.
const (
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	ErrUseDPoPNonce     = "use_dpop_nonce"
)

// DPoPNonceHeader carries a server nonce to the client (RFC 9449 §8.1).
const DPoPNonceHeader = "dpop-nonce"

// InvalidDPoPProof is 401 invalid_dpop_proof: the DPoP proof is missing or
// fails a check. The DPoP challenge names the algorithms a proof may use.
func InvalidDPoPProof(description string, algs []string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_Unauthorized, codes.Unauthenticated, DPoPChallenge(ErrInvalidDPoPProof, description, algs),
		ErrInvalidDPoPProof, description, policy.Decision{})
}

// UseDPoPNonce is 401 use_dpop_nonce (RFC 9449 §9): the proof lacks the
// server's current nonce, which the DPoP-Nonce header carries for a retry.
func UseDPoPNonce(description, nonce string, algs []string) *authv3.CheckResponse {
	d := policy.Decision{Headers: []policy.Header{{Name: DPoPNonceHeader, Value: nonce}}}
	return deny(typev3.StatusCode_Unauthorized, codes.Unauthenticated, DPoPChallenge(ErrUseDPoPNonce, description, algs),
		ErrUseDPoPNonce, description, d)
}

// DPoPChallenge builds a DPoP WWW-Authenticate value (RFC 9449 §7.1);
// errCode "" gives the bare challenge, algs empty leaves algs out.
func DPoPChallenge(errCode, description string, algs []string) string {
	var b strings.Builder
	b.WriteString(`DPoP realm="` + Realm + `"`)
	if errCode != "" {
		b.WriteString(`, error="` + errCode + `"`)
		if description != "" {
			b.WriteString(`, error_description="` + quotable(description) + `"`)
		}
	}
	if len(algs) > 0 {
		b.WriteString(`, algs="` + quotable(strings.Join(algs, " ")) + `"`)
	}
	return b.String()
}

// BearerChallenge is the bare Bearer challenge, for a request without a token.
func BearerChallenge() string { return challenge("", "") }

// DeniedChallenge is Denied with www as the challenge when the request had
// no token: with proof_of_possession required the client must learn to use
// DPoP, so that challenge is `DPoP realm="tokenwise", algs="…"`.
func DeniedChallenge(d policy.Decision, hadToken bool, www string) *authv3.CheckResponse {
	resp := Denied(d, hadToken)
	if hadToken || www == "" || hasHeader(d.Headers, "www-authenticate") {
		return resp
	}
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			h.Header.Value = www
		}
	}
	return resp
}
