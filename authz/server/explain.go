package server

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
)

// Limits are the limits an allowing decision carried, for a person reading
// one answer (tokenwise check): the answer is an allow, but the same token
// or caller may not be allowed again.
type Limits struct {
	// MaxUses is the token's use limit (0: none); this Check counted one use.
	MaxUses int64
	// RateLimit is the limit closest to exhaustion ("" when none) and
	// RateRemaining what it has left.
	RateLimit     string
	RateRemaining int64
}

// Explain is Check, plus the limits the decision carried.
func (a *Authorizer) Explain(ctx context.Context, check *authv3.CheckRequest) (*authv3.CheckResponse, Limits) {
	req, err := grpcfront.Request(check)
	if err != nil {
		resp, _ := a.Check(ctx, check)
		return resp, Limits{}
	}
	r := a.run(ctx, req, nil)
	return grpcfront.Response(r.reply), Limits{MaxUses: r.uses, RateLimit: r.rate.name, RateRemaining: r.rate.remaining}
}
