// Package answer turns the outcome of a Check into a reply.Reply,
// tokenwise's own answer, which neither front end owns: allow with the
// rewrites of the upstream request, or deny with the status,
// WWW-Authenticate challenge (RFC 6750 §3) and JSON body the client sees.
// The gRPC front end renders a Reply as Envoy's CheckResponse
// (grpcfront.Response), the HTTP front end as an HTTP response
// (httpfront.Write).
package answer

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// Realm is the realm of every Bearer challenge tokenwise sends.
const Realm = "tokenwise"

// Upstream is what tokenwise itself does to an allowed request, beside the
// policy's decision: headers from claims, and headers to strip.
type Upstream struct {
	// Set are headers to set, overwriting what the client sent.
	Set []policy.Header
	// Remove are headers to remove from the upstream request.
	Remove []string
	// RemoveQuery are query parameters to remove from the upstream request
	// (a token sent in the query, with remove_authorization).
	RemoveQuery []string
}

// Allow answers OK with the decision's rewrites and the upstream headers.
// Every upstream header overwrites (Append false, which the gRPC front end
// sends explicitly: Envoy reads an unset append as append_action, whose
// default would add ours beside a client's header of the same name).
func Allow(d policy.Decision, up Upstream) reply.Reply {
	a := reply.Reply{
		Allowed:              true,
		RequestHeaders:       overwrite(append(withoutNames(d.Headers, up.Set), up.Set...)),
		RemoveRequestHeaders: removals(d.RequestHeadersToRemove, up),
		ResponseHeaders:      add(d.ResponseHeadersToAdd),
		RemoveQuery:          queryRemovals(d.QueryParametersToRemove, up.RemoveQuery),
		Metadata:             metadata(d.DynamicMetadata),
	}
	for _, q := range d.QueryParametersToSet {
		a.SetQuery = append(a.SetQuery, reply.Param{Name: q.Name, Value: q.Value})
	}
	return a
}

// withoutNames drops the headers whose names tokenwise itself sets: a value
// taken from a verified claim is not something a policy can add a second of.
func withoutNames(headers, set []policy.Header) []policy.Header {
	var out []policy.Header
	for _, h := range headers {
		if !hasHeader(set, h.Name) {
			out = append(out, h)
		}
	}
	return out
}

// removals lists headers to strip upstream, leaving out any that tokenwise
// sets in the same answer (Envoy removes after it sets, which would drop ours).
func removals(fromPolicy []string, up Upstream) []string {
	set := map[string]bool{}
	for _, h := range up.Set {
		set[strings.ToLower(h.Name)] = true
	}
	var out []string
	for _, name := range append(append([]string(nil), fromPolicy...), up.Remove...) {
		name = strings.ToLower(name)
		if !set[name] {
			out = append(out, name)
			set[name] = true
		}
	}
	return out
}

// queryRemovals is the policy's query removals plus tokenwise's, each once.
func queryRemovals(fromPolicy, ours []string) []string {
	if len(ours) == 0 {
		return fromPolicy
	}
	out := append([]string(nil), fromPolicy...)
	for _, name := range ours {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// InvalidRequest is 400 invalid_request, for a malformed request such as one with two tokens.
func InvalidRequest(description string) reply.Reply {
	return deny(http.StatusBadRequest, challenge(reply.ErrInvalidRequest, description),
		reply.ErrInvalidRequest, description, policy.Decision{})
}

// InvalidToken is 401 invalid_token: a token that is malformed, fails
// verification, is revoked or is past its use limit. The policy is not asked.
func InvalidToken(description string) reply.Reply {
	return deny(http.StatusUnauthorized, challenge(reply.ErrInvalidToken, description),
		reply.ErrInvalidToken, description, policy.Decision{})
}

// Denied answers a policy that denied. Without a token it is 401 with a
// bare challenge (RFC 6750 §3.1: no error code when no credentials were
// sent); with a valid token it is 403 insufficient_scope. A policy's own
// http_status replaces the status, and the challenge goes with it only
// where it is true: insufficient_scope on a 403 with a token, the bare
// challenge on a 401 (RFC 9110 §15.5.2 requires one), and none on any other
// status (a 422 saying "insufficient_scope" sends a client hunting for a
// scope it has). The policy's headers, which may set their own
// WWW-Authenticate, and body override these defaults.
func Denied(d policy.Decision, hadToken bool) reply.Reply {
	status := http.StatusUnauthorized
	if hadToken {
		status = http.StatusForbidden
	}
	if d.HTTPStatus != 0 {
		status = d.HTTPStatus
	}
	description := d.Reason
	switch {
	case status == http.StatusForbidden && hadToken:
		return deny(status, challenge(reply.ErrInsufficientScope, description), reply.ErrInsufficientScope, description, d)
	case status == http.StatusUnauthorized:
		if description == "" && !hadToken {
			description = "a bearer token is required"
		}
		return deny(status, challenge("", ""), reply.ErrUnauthorized, description, d)
	}
	return deny(status, "", reply.ErrAccessDenied, description, d)
}

// Unavailable is 503 without a challenge: tokenwise could not do its job,
// for example the use-limit store is unreachable. Envoy passes it on.
func Unavailable(description string) reply.Reply {
	return deny(http.StatusServiceUnavailable, "", reply.ErrUnavailable, description, policy.Decision{})
}

// PayloadTooLarge is 413 without a challenge: the request body is too large
// or too complex for the policy to read (the credentials are not at fault).
func PayloadTooLarge(description string) reply.Reply {
	return deny(http.StatusRequestEntityTooLarge, "", reply.ErrInvalidRequest, description, policy.Decision{})
}

// InternalError is 500: the policy failed or tokenwise itself did.
// It is a deny, never a gRPC error, which failure_mode_allow would let through.
func InternalError(description string) reply.Reply {
	return deny(http.StatusInternalServerError, "", reply.ErrServer, description, policy.Decision{})
}

// deny builds a deny: the default JSON body (with its content-type first)
// unless the policy gave a body, the policy's headers, and the challenge www
// unless the policy set its own.
func deny(status int, www, errCode, description string, d policy.Decision) reply.Reply {
	headers := d.Headers
	body := d.Body
	if body == "" {
		body = jsonBody(errCode, description)
		headers = append([]policy.Header{{Name: "content-type", Value: "application/json"}}, headers...)
	}
	if www != "" && !hasHeader(headers, "www-authenticate") {
		headers = append(headers, policy.Header{Name: "www-authenticate", Value: www})
	}
	return reply.Reply{
		Status:          status,
		Error:           errCode,
		Description:     description,
		ResponseHeaders: overwrite(headers),
		Body:            body,
		Metadata:        metadata(d.DynamicMetadata),
	}
}

func hasHeader(headers []policy.Header, name string) bool {
	for _, h := range headers {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// challenge builds a WWW-Authenticate value; errCode "" gives the bare challenge.
func challenge(errCode, description string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + Realm + `"`)
	if errCode != "" {
		b.WriteString(`, error="` + errCode + `"`)
	}
	if description != "" && errCode != "" {
		b.WriteString(`, error_description="` + quotable(description) + `"`)
	}
	return b.String()
}

// quotable keeps only the characters RFC 6750 §3 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E), replacing the rest, so that a policy's reason
// cannot break the header.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}

func jsonBody(errCode, description string) string {
	return errorBody(errCode, description)
}

// overwrite lists headers that replace any header of the same name.
func overwrite(headers []policy.Header) []reply.Header {
	return options(headers, false)
}

// add lists headers that are added beside existing headers.
func add(headers []policy.Header) []reply.Header {
	return options(headers, true)
}

func options(headers []policy.Header, appendValue bool) []reply.Header {
	if len(headers) == 0 {
		return nil
	}
	out := make([]reply.Header, 0, len(headers))
	seen := map[string]bool{}
	for _, h := range headers {
		name := strings.ToLower(h.Name)
		// A second value for a name we overwrite must be appended, or it
		// would replace the first.
		app := appendValue || seen[name]
		seen[name] = true
		out = append(out, reply.Header{Name: name, Value: h.Value, Append: app})
	}
	return out
}

// metadata is the policy's dynamic metadata, nil when empty.
func metadata(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	return m
}
