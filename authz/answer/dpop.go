package answer

import (
	"net/http"
	"strings"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// DPoPNonceHeader carries a server nonce to the client (RFC 9449 §8.1).
const DPoPNonceHeader = "dpop-nonce"

// InvalidDPoPProof is 401 invalid_dpop_proof: the DPoP proof is missing or
// fails a check. The DPoP challenge names the algorithms a proof may use.
func InvalidDPoPProof(description string, algs []string) reply.Reply {
	return deny(http.StatusUnauthorized, DPoPChallenge(reply.ErrInvalidDPoPProof, description, algs),
		reply.ErrInvalidDPoPProof, description, policy.Decision{})
}

// UseDPoPNonce is 401 use_dpop_nonce (RFC 9449 §9): the proof lacks the
// server's current nonce, which the DPoP-Nonce header carries for a retry.
func UseDPoPNonce(description, nonce string, algs []string) reply.Reply {
	d := policy.Decision{Headers: []policy.Header{{Name: DPoPNonceHeader, Value: nonce}}}
	return deny(http.StatusUnauthorized, DPoPChallenge(reply.ErrUseDPoPNonce, description, algs),
		reply.ErrUseDPoPNonce, description, d)
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
func DeniedChallenge(d policy.Decision, hadToken bool, www string) reply.Reply {
	a := Denied(d, hadToken)
	if hadToken || www == "" || hasHeader(d.Headers, "www-authenticate") {
		return a
	}
	// Denied built these headers for this answer alone: no one else holds them.
	for i, h := range a.ResponseHeaders {
		if h.Name == "www-authenticate" {
			a.ResponseHeaders[i].Value = www
		}
	}
	return a
}
