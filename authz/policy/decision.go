package policy

import "github.com/tokenwise/tokenwise/authz/ratelimit"

// Header is one header name and value from a decision.
type Header struct {
	Name  string
	Value string
}

// Decision is what the policy answered for one request, in OPA-Envoy's shape
// plus tokenwise's use limits.
type Decision struct {
	// Allowed is the boolean decision or the object's allowed key.
	Allowed bool
	// Headers go to the upstream on allow (overwriting) and to the client on deny.
	Headers []Header
	// RequestHeadersToRemove are removed from the upstream request on allow.
	RequestHeadersToRemove []string
	// ResponseHeadersToAdd are added to the response to the client on allow.
	ResponseHeadersToAdd []Header
	// QueryParametersToSet and QueryParametersToRemove rewrite the upstream query on allow.
	QueryParametersToSet    []Header
	QueryParametersToRemove []string
	// HTTPStatus (0: the default for the case) and Body are used on deny.
	HTTPStatus int
	Body       string
	// DynamicMetadata is passed to Envoy as is (JSON-compatible values).
	DynamicMetadata map[string]any
	// MaxUses is the use limit: 0 none, 1 for one_time_use, N for max_uses.
	MaxUses int64
	// RateLimits are the limits an allowed request counts against, validated.
	RateLimits []ratelimit.Limit
	// Reason explains the decision: the error_description on a deny.
	Reason string
}
