// Package reply is tokenwise's own answer to a Check, which neither front
// end owns: the answer stage (package answer) builds a Reply, the gRPC
// front end renders it as Envoy's CheckResponse (grpcfront.Response) and
// the HTTP front end as an HTTP response (httpfront.Write). It imports
// nothing of tokenwise, so either front end can depend on it.
package reply

// RFC 6750 §3.1 error codes, and the OAuth codes used for server faults.
const (
	ErrInvalidRequest    = "invalid_request"
	ErrInvalidToken      = "invalid_token"
	ErrInsufficientScope = "insufficient_scope"
	ErrUnauthorized      = "unauthorized"
	ErrAccessDenied      = "access_denied"
	ErrServer            = "server_error"
	ErrUnavailable       = "temporarily_unavailable"
)

// RFC 9449 §7.1 and §9 error codes of the DPoP scheme.
const (
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	ErrUseDPoPNonce     = "use_dpop_nonce"
)

// ErrRateLimited is the error code of a 429 for a rate limit.
const ErrRateLimited = "rate_limited"

// Reply is the pipeline's answer to one Check, in tokenwise's own terms.
// The front ends render it; every choice that a client or upstream can see
// (which headers, in which order, set or appended) is made before, by the
// answer stage, so both front ends give the same answer.
type Reply struct {
	// Allowed says the request goes upstream.
	Allowed bool
	// Status is a deny's HTTP status (0 on allow). A document tokenwise
	// serves itself is a deny with status 200 (answer.Document).
	Status int
	// Error is a deny's OAuth error code (ErrInvalidToken …), "" for a
	// document; Description is what the deny says, for the error body and
	// gRPC's status message.
	Error, Description string

	// RequestHeaders are headers an allow sets on the upstream request.
	RequestHeaders []Header
	// RemoveRequestHeaders are lowercase header names an allow removes from
	// the upstream request.
	RemoveRequestHeaders []string
	// ResponseHeaders are headers of the client's response: an allow's are
	// added to the upstream's response, a deny's are the deny's own.
	ResponseHeaders []Header
	// SetQuery and RemoveQuery are an allow's rewrites of the upstream
	// request's query parameters.
	SetQuery    []Param
	RemoveQuery []string

	// Body is a deny's body (the type is in ResponseHeaders' content-type).
	Body string
	// Metadata is the policy's dynamic metadata (nil when it gave none).
	Metadata map[string]any
}

// Header is one header of an answer. Its name is lowercase. Append adds it
// beside any header of the same name; otherwise it replaces them.
type Header struct {
	Name, Value string
	Append      bool
}

// Param is one query parameter to set.
type Param struct{ Name, Value string }
