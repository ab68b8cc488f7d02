// Package server wires tokenwise's Check pipeline to the network: the gRPC
// listener (ext_authz v3, grpc.health.v1, reflection, the TokenAdmin API),
// the HTTP authorization listener (http_authz, for nginx, Traefik, Caddy and
// Envoy's http_service) and the HTTP operations listener (/healthz, /readyz,
// /metrics). Both front ends turn what their proxy sent into one
// request.Request and run the same pipeline on it.
//
// A Check reads as the pipeline it is: source → verify → proof of possession →
// revoke → policy → rate limit → use limit → answer, with the decision log
// and metrics recorded once at the end.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/resource"
	"github.com/tokenwise/tokenwise/authz/revoke"
	"github.com/tokenwise/tokenwise/authz/source"
	"github.com/tokenwise/tokenwise/authz/uselimit"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// Verifier verifies bearer tokens; *verify.Verifier is the real one.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*verify.Token, error)
	Ready() bool
}

// Policy decides requests; *policy.Engine is the real one.
type Policy interface {
	Decide(ctx context.Context, req *request.Request, tok *verify.Token) (policy.Decision, error)
}

// Authorizer answers Envoy's Check: it is the envoy.service.auth.v3.Authorization service.
type Authorizer struct {
	authv3.UnimplementedAuthorizationServer

	finder   *source.Finder
	verifier Verifier
	policy   Policy
	// revoked is the revocation set (nil: nothing is ever revoked).
	revoked *revoke.Set
	// pop checks proof of possession (nil: the defaults, see defaultPoPStage).
	pop    *popStage
	limits uselimit.Store
	rates  *rateStage // rate limits (nil: none enforced)
	// claims are forward.claims_to_headers in a fixed order, so the same
	// token always gets the same answer, byte for byte.
	claims       []claimHeader
	removeBearer bool // forward.remove_authorization
	maxTTL       time.Duration
	// failOpen lets limited requests through when the store fails (on_store_error: allow).
	failOpen bool
	metrics  *observe.Metrics
	tracing  *observe.Tracing
	log      *observe.DecisionLog
	logger   *slog.Logger
	// resource is RFC 9728 protected resource metadata (nil: off).
	resource *resource.Metadata
}

// result is the outcome of one Check, kept for the answer, the log and the metrics.
type result struct {
	reply   reply.Reply // what either front end renders
	token   *verify.Token
	outcome string
	// label is a short, bounded reason for metrics; reason may be the policy's free text.
	label  string
	reason string
	status int
	// detail is for the log only (say, an unknown token's unverified iss).
	detail string
	rate   rateNote // the rate limit the answer reports, if any
	uses   int64    // the use limit an allowing decision counted against (0: none)
}

// Check runs the pipeline for one request. It never returns a gRPC error:
// Envoy's failure_mode_allow would turn one into an allow. A panic becomes a
// 500 deny and the server goes on serving.
func (a *Authorizer) Check(ctx context.Context, check *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	req, err := grpcfront.Request(check)
	if err != nil {
		a.logger.Warn("check request refused", "error", err)
		req = &request.Request{Frontend: request.FrontendGRPC, Headers: map[string]string{}}
		bad := fail(answer.InternalError(err.Error()), "bad_check_request", 500)
		return grpcfront.Response(a.run(ctx, req, &bad).reply), nil
	}
	return grpcfront.Response(a.run(ctx, req, nil).reply), nil
}

// run is one Check from either front end: its span, the pipeline (unless
// pre already holds the answer), the decision log and the metrics.
func (a *Authorizer) run(ctx context.Context, req *request.Request, pre *result) (r result) {
	start := time.Now()
	ctx, span := a.startCheckSpan(ctx, req)
	defer func() {
		if p := recover(); p != nil {
			a.metrics.Panic()
			a.logger.Error("check panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r = fail(answer.InternalError("internal error"), "panic", 500)
		}
		endCheckSpan(span, r)
		a.record(ctx, req, r, time.Since(start))
	}()
	if pre != nil {
		return *pre
	}
	r = a.decide(ctx, req)
	r.reply = a.withResourceMetadata(r.reply)
	r.reply = a.withDPoPNonce(r)
	return r
}

// decide is the pipeline: source → verify → proof of possession → revoke →
// policy → rate limit → use limit → answer.
func (a *Authorizer) decide(ctx context.Context, req *request.Request) result {
	if r, ok := a.metadataDocument(req); ok {
		return r
	}
	found, err := a.finder.Find(req)
	if err != nil {
		return sourceFailed(err)
	}
	if r, stop := a.checkFound(req, found); stop {
		return r
	}
	var tok *verify.Token
	if found.Token != "" {
		if tok, err = a.verify(ctx, found.Token); err != nil {
			return invalidToken(err)
		}
		if err = a.resource.CheckAudience(tok); err != nil {
			return withToken(invalidToken(err), tok)
		}
	}
	if r, stop := a.proofOfPossession(ctx, req, found.Scheme, found.Token, tok); stop {
		return withToken(r, tok)
	}
	if r, stop := a.revocation(tok); stop {
		return withToken(r, tok)
	}
	d, err := a.decidePolicy(ctx, req, tok)
	if errors.Is(err, policy.ErrBodyTooComplex) {
		return withToken(fail(answer.PayloadTooLarge("the request body is too complex to authorize"), "body_too_complex", 413), tok)
	}
	if err != nil { // the engine has logged why
		return withToken(fail(answer.InternalError("policy evaluation failed"), "policy_error", 500), tok)
	}
	if !d.Allowed {
		return a.deniedPoP(d, tok)
	}
	rl, stop := a.rateLimit(ctx, &d)
	if stop {
		return withToken(rl, tok)
	}
	if r, stop := a.useLimit(ctx, tok, d); stop {
		return withToken(r, tok)
	}
	allowed := result{reply: answer.Allow(d, a.upstream(req, tok, found)), token: tok, outcome: "allow", label: "allowed", reason: reasonOr(d.Reason, "allowed"), uses: d.MaxUses}
	return withRate(allowed, rl.rate)
}

// verify is the verification stage in its own span.
func (a *Authorizer) verify(ctx context.Context, raw string) (*verify.Token, error) {
	ctx, span := a.tracing.Start(ctx, "tokenwise.verify")
	defer span.End()
	return a.verifier.Verify(ctx, raw)
}

// decidePolicy is the policy stage in its own span.
func (a *Authorizer) decidePolicy(ctx context.Context, req *request.Request, tok *verify.Token) (policy.Decision, error) {
	ctx, span := a.tracing.Start(ctx, "tokenwise.policy")
	defer span.End()
	return a.policy.Decide(ctx, req, tok)
}

func invalidToken(err error) result {
	var verr *verify.Error
	if errors.As(err, &verr) && verr.Unavailable() {
		// The token may well be good: the issuer's keys never loaded, or its
		// introspection endpoint failed. Tell the client to retry rather
		// than to throw its token away.
		return fail(answer.Unavailable(verr.Description), verr.Reason, 503)
	}
	if errors.As(err, &verr) {
		r := fail(answer.InvalidToken(verr.Description), verr.Reason, 401)
		r.detail = verr.Detail
		return r
	}
	return fail(answer.InvalidToken("token is invalid"), "invalid_token", 401)
}

// revocation refuses a revoked token. It asks the replica's local set: no
// network call. stop is true when the request must be denied.
func (a *Authorizer) revocation(tok *verify.Token) (r result, stop bool) {
	if tok == nil || a.revoked == nil {
		return result{}, false
	}
	revoked, err := a.revoked.Revoked(tok)
	switch {
	case err != nil && a.failOpen:
		a.logger.Warn("revocation set unavailable; allowing as on_store_error says", "error", err)
		return result{}, false
	case err != nil:
		return fail(answer.Unavailable("the revocation list is unavailable"), "revocation_unavailable", 503), true
	case revoked:
		return fail(answer.InvalidToken("token has been revoked"), "revoked", 401), true
	}
	return result{}, false
}

func denied(d policy.Decision, tok *verify.Token) result {
	ans := answer.Denied(d, tok != nil)
	return result{reply: ans, token: tok, outcome: "deny", label: "policy_denied", reason: reasonOr(d.Reason, "policy_denied"), status: ans.Status}
}

// useLimit counts this use when the decision carries a limit. stop is true
// when the request must be denied instead of allowed.
func (a *Authorizer) useLimit(ctx context.Context, tok *verify.Token, d policy.Decision) (r result, stop bool) {
	if d.MaxUses <= 0 {
		return result{}, false
	}
	if tok == nil {
		// Nothing to count: a use-limited route cannot be anonymous.
		return denied(policy.Decision{Reason: "a bearer token is required"}, nil), true
	}
	if a.limits == nil {
		return fail(answer.Unavailable("use limits are not configured"), "use_limit_unconfigured", 503), true
	}
	ctx, span := a.tracing.Start(ctx, "tokenwise.use_limit")
	ok, err := a.limits.Use(ctx, uselimit.Key(tok), d.MaxUses, uselimit.TTL(tok, time.Now(), a.maxTTL))
	span.End()
	switch {
	case err != nil && a.failOpen:
		a.logger.Warn("use-limit store failed; allowing as on_store_error says", "error", err)
		return result{}, false
	case err != nil:
		a.logger.Error("use-limit store failed", "error", err)
		return fail(answer.Unavailable("the use-limit store is unavailable"), "store_error", 503), true
	case !ok:
		return fail(answer.InvalidToken("token has already been used"), "already_used", 401), true
	}
	return result{}, false
}

// upstream is what tokenwise sets on an allowed request beside the policy:
// claim values in their headers, and removals. A configured claim header
// that tokenwise does not set is removed, so a client can never supply it.
// With forward.remove_authorization, the token is stripped wherever it was
// found: the header, the token cookie (the Cookie header is rewritten without
// it, other cookies kept) or the query parameter.
func (a *Authorizer) upstream(req *request.Request, tok *verify.Token, found source.Found) answer.Upstream {
	var up answer.Upstream
	for _, c := range a.claims {
		if value, ok := claimValue(tok, c.claim); ok {
			up.Set = append(up.Set, policy.Header{Name: c.header, Value: value})
		} else {
			up.Remove = append(up.Remove, c.header)
		}
	}
	if !a.removeBearer || tok == nil {
		return up
	}
	switch found.Where {
	case source.Header:
		up.Remove = append(up.Remove, found.Header)
	case source.Cookie:
		if rest, keep := a.finder.CookieHeaderWithout(req); keep {
			up.Set = append(up.Set, policy.Header{Name: "cookie", Value: rest})
		} else {
			up.Remove = append(up.Remove, "cookie")
		}
	case source.Query:
		up.RemoveQuery = found.QueryKeys
	}
	return up
}

// sourceFailed answers a request whose token could not be found cleanly: a
// malformed Bearer or DPoP credential is a bad token (401), anything else
// (two tokens) a malformed request (400).
func sourceFailed(err error) result {
	if errors.Is(err, source.ErrInvalidToken) {
		return fail(answer.InvalidToken(err.Error()), "malformed_credentials", 401)
	}
	return fail(answer.InvalidRequest(err.Error()), "invalid_request", 400)
}

// checkFound refuses what the finder found but this build cannot honour:
// a token that remove_authorization could not strip (a query parameter Envoy
// does not see as its own, or any query token when a proxy asks over HTTP,
// whose answer cannot rewrite the query).
func (a *Authorizer) checkFound(req *request.Request, found source.Found) (result, bool) {
	if a.removeBearer && found.Where == source.Query && (found.AfterSemicolon || req.Frontend == request.FrontendHTTP) {
		return fail(answer.InvalidRequest("the token's query parameter cannot be removed; send it in the Authorization header"), "invalid_request", 400), true
	}
	return result{}, false
}

// claimHeader is one claim forwarded upstream in a header.
type claimHeader struct{ claim, header string }

// claimHeaders lists cfg's claims_to_headers sorted by claim.
func claimHeaders(cfg config.Forward) []claimHeader {
	var out []claimHeader
	for _, claim := range slices.Sorted(maps.Keys(cfg.ClaimsToHeaders)) {
		out = append(out, claimHeader{claim, cfg.ClaimsToHeaders[claim]})
	}
	return out
}

// claimValue renders a claim as a header value: strings as they are, numbers
// and booleans in JSON, arrays of strings joined with ",", anything else as JSON.
func claimValue(tok *verify.Token, claim string) (string, bool) {
	if tok == nil {
		return "", false
	}
	v, ok := tok.Claims[claim]
	if !ok || v == nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, safeHeaderValue(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, isString := e.(string)
			if !isString {
				return jsonValue(v)
			}
			parts = append(parts, s)
		}
		s := strings.Join(parts, ",")
		return s, safeHeaderValue(s)
	default:
		return jsonValue(v)
	}
}

func jsonValue(v any) (string, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), safeHeaderValue(string(b))
}

// safeHeaderValue refuses control characters, which Envoy would reject and
// which could split headers.
func safeHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func fail(ans reply.Reply, reason string, status int) result {
	return result{reply: ans, outcome: "deny", label: reason, reason: reason, status: status}
}

func withToken(r result, tok *verify.Token) result {
	r.token = tok
	return r
}

func reasonOr(reason, fallback string) string {
	if reason == "" {
		return fallback
	}
	return reason
}

// startCheckSpan starts the Check's span as a child of the trace Envoy
// started, when the request carries one.
func (a *Authorizer) startCheckSpan(ctx context.Context, req *request.Request) (context.Context, trace.Span) {
	ctx = a.tracing.Join(ctx, req.Headers)
	return a.tracing.Start(ctx, "tokenwise.Check", trace.WithSpanKind(trace.SpanKindServer))
}

// endCheckSpan records the outcome on the span; never a token or a header value.
func endCheckSpan(span trace.Span, r result) {
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("tokenwise.outcome", r.outcome),
			attribute.String("tokenwise.reason", r.label),
			attribute.Int("http.response.status_code", r.status),
		)
		if r.token != nil {
			span.SetAttributes(attribute.String("tokenwise.issuer", r.token.Issuer))
		}
	}
	span.End()
}

// record writes the decision log line and the metrics for one Check.
func (a *Authorizer) record(ctx context.Context, req *request.Request, r result, took time.Duration) {
	// record runs after the Check's own recover; a fault here must not take
	// the process down either. The answer is already decided.
	defer func() {
		if p := recover(); p != nil {
			a.metrics.Panic()
			a.logger.Error("recording a decision panicked", "panic", fmt.Sprint(p))
		}
	}()
	a.metrics.Decision(r.outcome, r.label, took)
	a.metrics.FrontendDecision(req.Frontend, r.outcome)
	e := observe.Entry{
		DecisionID: newID(),
		RequestID:  req.Headers["x-request-id"],
		Method:     req.Method,
		Path:       a.finder.RedactPath(req.Path),
		Outcome:    r.outcome,
		Status:     r.status,
		Reason:     r.reason,
		Detail:     r.detail,
		Took:       took,
		Frontend:   req.Frontend,
	}
	e.RateLimit, e.RateLimitRemaining = r.rate.name, r.rate.remaining
	if e.RequestID == "" {
		e.RequestID = req.ID
	}
	if t := r.token; t != nil {
		e.Issuer, e.Subject, e.JTI = t.Issuer, t.Subject, t.ID
		e.Proof = proofOf(t)
	}
	a.log.Log(ctx, e)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
