package server

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// PolicyDecision asks the policy about req as Check would (same token
// source, verification and input) but enforces nothing: no use is counted.
// tokenwise check uses it to show the limits a decision carried. ok is false
// when Check would not reach the policy (no usable token or a fault).
func (s *Server) PolicyDecision(ctx context.Context, req *authv3.CheckRequest) (d policy.Decision, ok bool) {
	raw, err := s.authz.finder.Find(req)
	if err != nil {
		return policy.Decision{}, false
	}
	if raw == "" {
		d, err = s.policy.Decide(ctx, req, nil)
		return d, err == nil
	}
	tok, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return policy.Decision{}, false
	}
	d, err = s.policy.Decide(ctx, req, tok)
	return d, err == nil
}
