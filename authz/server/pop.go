package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/pop"
	"github.com/tokenwise/tokenwise/authz/reply"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/source"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// popStage is the proof-of-possession stage: it runs right after
// verification, so a bound token never reaches the policy unproven.
type popStage struct {
	checker *pop.Checker
	// policies are each issuer's settings, by issuer name.
	policies map[string]pop.Policy
	// noToken is the challenge for a request without a token: Bearer, or
	// DPoP with algs when an issuer requires proof of possession.
	noToken string
}

// newPoPStage builds the stage from cfg; the replay store is the one
// use_limits names, so replays are refused across the replicas sharing it.
func newPoPStage(cfg *config.Config, logger *slog.Logger) (*popStage, error) {
	replay, err := pop.NewReplayStore(cfg.UseLimits)
	if err != nil {
		return nil, err
	}
	var nonces *pop.Nonces
	if cfg.DPoP.NonceSecret != "" {
		nonces = pop.NewNonces(cfg.DPoP.NonceSecret, cfg.DPoP.NonceLifetime)
	}
	st := &popStage{
		checker:  pop.New(pop.Options{Replay: replay, Nonces: nonces, FailOpen: cfg.UseLimits.OnStoreError == "allow", Logger: logger}),
		policies: map[string]pop.Policy{},
	}
	var required, optional bool
	var algs []string
	for _, is := range cfg.Issuers {
		p := pop.PolicyFor(is)
		st.policies[is.Name] = p
		if !p.Required {
			optional = true
			continue
		}
		required = true
		for _, alg := range p.Algorithms {
			if !slices.Contains(algs, alg) {
				algs = append(algs, alg)
			}
		}
	}
	st.noToken = noTokenChallenge(required, optional, algs)
	return st, nil
}

// noTokenChallenge is Bearer when no issuer requires proof of possession,
// DPoP when all do, and both challenges (RFC 9110 §11.6.1 allows a list)
// when the issuers differ.
func noTokenChallenge(required, optional bool, algs []string) string {
	dpop := answer.DPoPChallenge("", "", algs)
	switch {
	case !required:
		return ""
	case optional:
		return answer.BearerChallenge() + ", " + dpop
	}
	return dpop
}

// defaultPoPStage is the stage of an Authorizer built without one: every
// issuer has the defaults and replays are remembered in memory. Bound tokens
// are checked all the same; nothing turns the check off.
var defaultPoPStage = sync.OnceValue(func() *popStage {
	return &popStage{checker: pop.New(pop.Options{}), policies: map[string]pop.Policy{}}
})

// policy is the issuer's settings; an issuer the stage does not know gets
// the defaults.
func (st *popStage) policy(issuer string) pop.Policy {
	if p, ok := st.policies[issuer]; ok {
		return p
	}
	return pop.PolicyFor(config.Issuer{})
}

// close releases the replay store.
func (st *popStage) close() {
	if st != nil {
		_ = st.checker.Close()
	}
}

// proofOfPossession checks the token's binding against the request. stop is
// true when the request must be denied.
func (a *Authorizer) proofOfPossession(ctx context.Context, req *request.Request, scheme, raw string, tok *verify.Token) (r result, stop bool) {
	if tok == nil {
		return result{}, false
	}
	st := a.pop
	if st == nil {
		st = defaultPoPStage()
	}
	cnf := tok.Claims["cnf"]
	p := st.policy(tok.Issuer)
	if cnf == nil && scheme != source.SchemeDPoP && !p.Required {
		// An unbound Bearer token has nothing to prove: no span, no work.
		return result{}, false
	}
	ctx, span := a.tracing.Start(ctx, "tokenwise.pop")
	defer span.End()
	_, err := st.checker.Check(ctx, popRequest(req), scheme, raw, cnf, p)
	if err == nil {
		return result{}, false
	}
	switch err.Kind {
	case pop.KindInvalidProof:
		return fail(answer.InvalidDPoPProof(err.Description, p.Algorithms), err.Reason, 401), true
	case pop.KindUseNonce:
		return fail(answer.UseDPoPNonce(err.Description, err.Nonce, p.Algorithms), err.Reason, 401), true
	case pop.KindUnavailable:
		return fail(answer.Unavailable(err.Description), err.Reason, 503), true
	}
	return fail(answer.InvalidToken(err.Description), err.Reason, 401), true
}

// popRequest is what the checks read of the request: the scheme the client
// used (x-forwarded-proto, which Envoy sets at the edge, else the request's),
// the authority, the path, every DPoP header and the client certificate.
func popRequest(req *request.Request) pop.Request {
	return pop.Request{
		Method:      req.Method,
		Scheme:      scheme(req),
		Authority:   authority(req),
		Path:        req.Path,
		Proofs:      req.Values("dpop"),
		Certificate: req.Source.Certificate,
	}
}

// scheme is the scheme the client used. Over gRPC it is x-forwarded-proto,
// which Envoy sets at the edge, else the request's. The HTTP front end has
// already taken X-Forwarded-Proto from trusted proxies only, so its scheme
// stands: a header from anyone else must not pick the htu.
func scheme(req *request.Request) string {
	if req.Frontend == request.FrontendHTTP {
		return strings.ToLower(req.Scheme)
	}
	return pop.RequestScheme(req.Header("x-forwarded-proto"), req.Scheme)
}

// authority is :authority, or host when the front end left it empty.
func authority(req *request.Request) string {
	if req.Authority != "" {
		return req.Authority
	}
	if a := req.Header(":authority"); a != "" {
		return a
	}
	return req.Header("host")
}

// deniedPoP answers a policy deny; without a token it challenges with DPoP
// when an issuer requires proof of possession.
func (a *Authorizer) deniedPoP(d policy.Decision, tok *verify.Token) result {
	r := denied(d, tok)
	if tok == nil && a.pop != nil && a.pop.noToken != "" {
		r.reply = answer.DeniedChallenge(d, false, a.pop.noToken)
	}
	return r
}

// withDPoPNonce gives an allowed request with a DPoP-bound token the current
// server nonce in DPoP-Nonce when its issuer demands nonces (RFC 9449 §8.2),
// so a client moves to the next nonce before its own expires instead of
// paying a 401 and a retry.
func (a *Authorizer) withDPoPNonce(r result) reply.Reply {
	if !r.reply.Allowed || r.token == nil || a.pop == nil || !a.pop.policy(r.token.Issuer).Nonce ||
		pop.ProofKind(r.token.Claims["cnf"]) != pop.ProofDPoP {
		return r.reply
	}
	if nonce := a.pop.checker.Nonce(); nonce != "" {
		// Clipped: the answer's headers are never appended into spare
		// capacity someone else may share. The nonce replaces any other.
		r.reply.ResponseHeaders = append(slices.Clip(r.reply.ResponseHeaders),
			reply.Header{Name: answer.DPoPNonceHeader, Value: nonce})
	}
	return r.reply
}

// proofOf is the proof a token's binding called for, for the decision log.
func proofOf(tok *verify.Token) string {
	if tok == nil {
		return ""
	}
	return pop.ProofKind(tok.Claims["cnf"])
}
