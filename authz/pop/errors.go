package pop

// Kind says how a refusal is answered.
type Kind int

// The kinds of refusal.
const (
	// KindInvalidToken is 401 invalid_token with a Bearer challenge: the
	// token cannot be used this way, whatever proof comes with it.
	KindInvalidToken Kind = iota
	// KindInvalidProof is 401 invalid_dpop_proof with a DPoP challenge.
	KindInvalidProof
	// KindUseNonce is 401 use_dpop_nonce with a DPoP challenge and a
	// DPoP-Nonce header carrying Error.Nonce (RFC 9449 §9).
	KindUseNonce
	// KindUnavailable is 503: the replay store could not be asked.
	KindUnavailable
)

// Reasons are the stable labels an *Error carries, for metrics and the log.
const (
	ReasonDowngrade      = "dpop_bound_bearer"    // a DPoP-bound token sent as Bearer
	ReasonUnbound        = "dpop_unbound"         // the DPoP scheme with an unbound token
	ReasonPoPRequired    = "pop_required"         // an unbound token where proof_of_possession: required
	ReasonCnf            = "cnf_malformed"        // cnf is not an object of strings
	ReasonCnfUnsupported = "cnf_unsupported"      // cnf binds by a method tokenwise cannot check
	ReasonCertMissing    = "mtls_no_certificate"  // certificate-bound, no client certificate
	ReasonCertMalformed  = "mtls_bad_certificate" // the forwarded certificate does not parse
	ReasonCertMismatch   = "mtls_mismatch"        // another certificate than the bound one
	ReasonMissing        = "dpop_missing"         // no DPoP header
	ReasonMultiple       = "dpop_multiple"        // more than one DPoP header
	ReasonMalformed      = "dpop_malformed"       // not a compact JWS with JSON header and claims
	ReasonTyp            = "dpop_typ"             // typ is not dpop+jwt
	ReasonAlg            = "dpop_alg"             // alg outside dpop_algorithms or unfit for the key
	ReasonJWK            = "dpop_jwk"             // jwk missing, private, or not a usable public key
	ReasonSignature      = "dpop_signature"       // the signature does not verify
	ReasonThumbprint     = "dpop_thumbprint"      // the key is not the token's cnf.jkt
	ReasonHTM            = "dpop_htm"             // htm is not the method
	ReasonHTU            = "dpop_htu"             // htu is not the URL
	ReasonIAT            = "dpop_iat"             // iat outside the proof lifetime
	ReasonATH            = "dpop_ath"             // ath is not the token's hash
	ReasonNonce          = "dpop_nonce"           // server nonce missing or stale
	ReasonReplay         = "dpop_replay"          // the jti was seen before
	ReasonStore          = "dpop_store_error"     // the replay store failed
)

// Error is why a request's proof of possession is refused. Description is
// safe to show the client; it never holds the token or the proof.
type Error struct {
	Kind        Kind
	Reason      string
	Description string
	// Nonce is the fresh nonce for a KindUseNonce answer.
	Nonce string
}

// Error is the Description, which the client may see.
func (e *Error) Error() string { return e.Description }

func invalidToken(reason, description string) *Error {
	return &Error{Kind: KindInvalidToken, Reason: reason, Description: description}
}

func invalidProof(reason, description string) *Error {
	return &Error{Kind: KindInvalidProof, Reason: reason, Description: description}
}
