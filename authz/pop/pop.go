// Package pop checks proof of possession for sender-constrained tokens: a
// DPoP proof (RFC 9449) for a token whose cnf claim names a key thumbprint
// (jkt), and the client certificate (RFC 8705) for a token whose cnf names a
// certificate thumbprint (x5t#S256). It refuses the downgrades: a bound
// token presented as a plain Bearer token, a binding it cannot check, and the
// DPoP scheme with an unbound token.
//
// The package takes plain values, not Envoy's types, so any front end (gRPC
// ext_authz, HTTP mode, the offline check) can use it.
package pop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
)

// Proof kinds Check reports, as input.token.proof has them.
const (
	ProofDPoP = "dpop"
	ProofMTLS = "mtls"
)

// Request is what the checks need of the HTTP request.
type Request struct {
	// Method is the HTTP method, compared with the proof's htm.
	Method string
	// Scheme is the URL scheme the client used: x-forwarded-proto when
	// Envoy sets it, else the request's own (see RequestScheme).
	Scheme string
	// Authority is :authority (or host), Path the path with any query.
	Authority, Path string
	// Proofs are the values of every DPoP header.
	Proofs []string
	// Certificate is the client certificate as Envoy forwards it in
	// attributes.source.certificate: URL-encoded PEM, "" when none.
	Certificate string
}

// RequestScheme is the scheme the client used: the first value of
// x-forwarded-proto, which Envoy sets at the edge, else the request's scheme.
func RequestScheme(forwardedProto, scheme string) string {
	first, _, _ := strings.Cut(forwardedProto, ",")
	if first = strings.TrimSpace(first); first != "" {
		return strings.ToLower(first)
	}
	return strings.ToLower(scheme)
}

// Policy is one issuer's proof-of-possession settings.
type Policy struct {
	// Required refuses unbound tokens (proof_of_possession: required).
	Required bool
	// ProofLifetime is how far a proof's iat may lie in the past.
	ProofLifetime time.Duration
	// Leeway is the clock skew allowed on iat either way.
	Leeway time.Duration
	// Algorithms are the proof algorithms accepted (dpop_algorithms).
	Algorithms []string
	// Nonce demands a server nonce in every proof (dpop_nonce).
	Nonce bool
}

// PolicyFor returns the policy an issuer's configuration gives.
func PolicyFor(is config.Issuer) Policy {
	p := Policy{
		Required:      is.ProofOfPossession == config.ProofRequired,
		ProofLifetime: is.DPoPProofLifetime,
		Leeway:        is.Leeway,
		Algorithms:    is.DPoPAlgorithms,
		Nonce:         is.DPoPNonce,
	}
	if p.ProofLifetime <= 0 {
		p.ProofLifetime = config.DefaultDPoPProofLifetime
	}
	if len(p.Algorithms) == 0 {
		p.Algorithms = config.DefaultDPoPAlgorithms
	}
	return p
}

// Options configure a Checker.
type Options struct {
	// Replay remembers proofs already used (nil: an in-process store).
	Replay ReplayStore
	// Nonces issues and checks server nonces; required by a Policy with Nonce.
	Nonces *Nonces
	// FailOpen skips the replay check when the store fails (on_store_error: allow).
	FailOpen bool
	// Logger receives store failures (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Checker checks proof of possession. It is safe for concurrent use.
type Checker struct {
	keys     keyCache
	replay   ReplayStore
	nonces   *Nonces
	failOpen bool
	logger   *slog.Logger
	now      func() time.Time
}

// New returns a Checker.
func New(opts Options) *Checker {
	c := &Checker{replay: opts.Replay, nonces: opts.Nonces, failOpen: opts.FailOpen, logger: opts.Logger, now: opts.Now}
	if c.replay == nil {
		c.replay = NewMemoryReplay()
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Close releases the replay store.
func (c *Checker) Close() error { return c.replay.Close() }

// Nonce returns a fresh server nonce, or "" when nonces are not configured.
// An allowed answer may carry it in DPoP-Nonce, so clients move on to the
// next nonce before theirs expires (RFC 9449 §8.2).
func (c *Checker) Nonce() string {
	if c.nonces == nil {
		return ""
	}
	return c.nonces.Current(c.now())
}

// Check checks the proof of possession of a verified token. scheme is the
// Authorization scheme it came with ("bearer", "dpop"; "" for a cookie or a
// query parameter), rawToken the token as sent, cnf its cnf claim (nil when
// absent). It returns which proof was checked ("dpop", "mtls", or "" for an
// unbound token), or why the request must be refused.
func (c *Checker) Check(ctx context.Context, req Request, scheme, rawToken string, cnf any, p Policy) (string, *Error) {
	b, err := bindingOf(cnf)
	if err != nil {
		return "", err
	}
	dpopScheme := strings.EqualFold(scheme, "dpop")
	switch {
	case b.jkt != "" && !dpopScheme:
		return "", invalidToken(ReasonDowngrade, "the token is bound to a DPoP key")
	case b.jkt == "" && dpopScheme:
		return "", invalidToken(ReasonUnbound, "the DPoP scheme needs a DPoP-bound token")
	case b.jkt == "" && b.x5t == "" && p.Required:
		return "", invalidToken(ReasonPoPRequired, "the token must be bound to a key or a client certificate")
	}
	proof := ""
	if b.x5t != "" {
		if err := checkCertificate(req.Certificate, b.x5t); err != nil {
			return "", err
		}
		proof = ProofMTLS
	}
	if b.jkt != "" {
		if err := c.checkDPoP(ctx, req, rawToken, b.jkt, p); err != nil {
			return "", err
		}
		proof = ProofDPoP
	}
	return proof, nil
}

// binding is what a cnf claim binds a token to.
type binding struct{ jkt, x5t string }

// bindingOf reads cnf. Any member other than jkt and x5t#S256 is a binding
// tokenwise cannot check, and such a token is refused rather than passed as
// if it were unbound.
func bindingOf(cnf any) (binding, *Error) {
	if cnf == nil {
		return binding{}, nil
	}
	m, ok := cnf.(map[string]any)
	if !ok || len(m) == 0 {
		return binding{}, invalidToken(ReasonCnf, "the token's cnf claim is malformed")
	}
	var b binding
	for name, v := range m {
		s, isString := v.(string)
		switch {
		case name == "jkt" && isString && s != "":
			b.jkt = s
		case name == "x5t#S256" && isString && s != "":
			b.x5t = s
		case name == "jkt" || name == "x5t#S256":
			return binding{}, invalidToken(ReasonCnf, "the token's cnf claim is malformed")
		default:
			return binding{}, invalidToken(ReasonCnfUnsupported, "the token is bound by a confirmation method tokenwise cannot check")
		}
	}
	return b, nil
}

// checkDPoP runs every RFC 9449 §4.3 check, the replay check last, so a
// proof that fails any other check never uses up its jti.
func (c *Checker) checkDPoP(ctx context.Context, req Request, rawToken, jkt string, p Policy) *Error {
	raw, err := single(req.Proofs)
	if err != nil {
		return err
	}
	pr, err := parseProof(raw, p.Algorithms, &c.keys)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(pr.key.thumbprint), []byte(jkt)) != 1 {
		return invalidProof(ReasonThumbprint, "the DPoP proof's key is not the key the token is bound to")
	}
	if err := checkRequest(pr, req); err != nil {
		return err
	}
	now := c.now()
	if err := checkIAT(pr.iat, now, p); err != nil {
		return err
	}
	if !matchesATH(pr.ath, rawToken) {
		return invalidProof(ReasonATH, "the DPoP proof's ath is not the hash of the token")
	}
	if err := c.checkNonce(pr.nonce, now, p); err != nil {
		return err
	}
	return c.checkReplay(ctx, jkt, pr.jti, p)
}

// maxProofBytes bounds a DPoP header before any decoding.
const maxProofBytes = 8 << 10

// single returns the one DPoP proof of the request. Envoy joins repeated
// headers with ",", which a compact JWS never holds, so a comma means two.
func single(proofs []string) (string, *Error) {
	switch {
	case len(proofs) == 0 || len(proofs) == 1 && strings.TrimSpace(proofs[0]) == "":
		return "", invalidProof(ReasonMissing, "the request has no DPoP proof")
	case len(proofs) > 1 || strings.Contains(proofs[0], ","):
		return "", invalidProof(ReasonMultiple, "the request must carry exactly one DPoP header")
	case len(proofs[0]) > maxProofBytes:
		return "", invalidProof(ReasonMalformed, "the DPoP proof is too long")
	}
	return strings.TrimSpace(proofs[0]), nil
}

// checkRequest compares htm and htu with the request.
func checkRequest(pr *proof, req Request) *Error {
	if pr.htm != req.Method {
		return invalidProof(ReasonHTM, "the DPoP proof's htm is not the request's method")
	}
	want, err := RequestURL(req.Scheme, req.Authority, req.Path)
	if err != nil {
		return invalidProof(ReasonHTU, "the request's URL cannot be compared with the DPoP proof's htu")
	}
	got, err := NormalizeURL(pr.htu)
	if err != nil || got != want {
		return invalidProof(ReasonHTU, "the DPoP proof's htu is not the request's URL")
	}
	return nil
}

// checkIAT accepts an iat from ProofLifetime (plus leeway) ago to leeway ahead.
func checkIAT(iat, now time.Time, p Policy) *Error {
	if iat.Before(now.Add(-p.ProofLifetime - p.Leeway)) {
		return invalidProof(ReasonIAT, "the DPoP proof is too old")
	}
	if iat.After(now.Add(p.Leeway)) {
		return invalidProof(ReasonIAT, "the DPoP proof is issued in the future")
	}
	return nil
}

// matchesATH reports whether ath is the base64url SHA-256 of the token.
func matchesATH(ath, rawToken string) bool {
	sum := sha256.Sum256([]byte(rawToken))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(ath), []byte(want)) == 1
}

// checkNonce demands a current server nonce when the policy asks for one.
func (c *Checker) checkNonce(nonce string, now time.Time, p Policy) *Error {
	if !p.Nonce {
		return nil
	}
	if c.nonces == nil {
		// A configuration fault, refused at load; fail closed all the same.
		return invalidProof(ReasonNonce, "server nonces are not configured")
	}
	if nonce != "" && c.nonces.Valid(nonce, now) {
		return nil
	}
	description := "the DPoP proof must carry the server's nonce"
	if nonce != "" {
		description = "the DPoP proof's nonce is not current"
	}
	return &Error{Kind: KindUseNonce, Reason: ReasonNonce, Description: description, Nonce: c.nonces.Current(now)}
}

// checkReplay records the proof and refuses one already seen. A key lives
// as long as an iat can be accepted: the lifetime plus leeway on both sides.
func (c *Checker) checkReplay(ctx context.Context, jkt, jti string, p Policy) *Error {
	fresh, err := c.replay.Claim(ctx, replayKey(jkt, jti), p.ProofLifetime+2*p.Leeway)
	switch {
	case err != nil && c.failOpen:
		c.logger.Warn("DPoP replay store failed; allowing as on_store_error says", "error", err)
		return nil
	case err != nil:
		c.logger.Error("DPoP replay store failed", "error", err)
		return &Error{Kind: KindUnavailable, Reason: ReasonStore, Description: "the DPoP replay store is unavailable"}
	case !fresh:
		return invalidProof(ReasonReplay, "the DPoP proof has already been used")
	}
	return nil
}

// ProofKind is the proof a token with this cnf claim must come with: "dpop"
// for a key thumbprint (jkt), "mtls" for a certificate thumbprint, "" for
// none. A token that passed Check has had exactly this proof checked.
func ProofKind(cnf any) string {
	m, _ := cnf.(map[string]any)
	switch {
	case m["jkt"] != nil:
		return ProofDPoP
	case m["x5t#S256"] != nil:
		return ProofMTLS
	}
	return ""
}
