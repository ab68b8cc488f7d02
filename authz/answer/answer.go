// Package answer turns the outcome of a Check into Envoy's CheckResponse:
// allow with the headers for the upstream, or deny with the status,
// WWW-Authenticate challenge (RFC 6750 §3) and JSON body the client sees.
package answer

import (
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// Realm is the realm of every Bearer challenge tokenwise sends.
const Realm = "tokenwise"

// RFC 6750 §3.1 error codes, and the OAuth codes used for server faults.
const (
	ErrInvalidRequest    = "invalid_request"
	ErrInvalidToken      = "invalid_token"
	ErrInsufficientScope = "insufficient_scope"
	errUnauthorized      = "unauthorized"
	errAccessDenied      = "access_denied"
	errServer            = "server_error"
	errUnavailable       = "temporarily_unavailable"
)

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
// Every upstream header is sent with append explicitly false: Envoy reads an
// unset append as append_action, whose default would add ours beside a
// client's header of the same name.
func Allow(d policy.Decision, up Upstream) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{
		Headers:                 overwrite(append(withoutNames(d.Headers, up.Set), up.Set...)),
		HeadersToRemove:         removals(d.RequestHeadersToRemove, up),
		ResponseHeadersToAdd:    add(d.ResponseHeadersToAdd),
		QueryParametersToRemove: queryRemovals(d.QueryParametersToRemove, up.RemoveQuery),
	}
	for _, q := range d.QueryParametersToSet {
		ok.QueryParametersToSet = append(ok.QueryParametersToSet, &corev3.QueryParameter{Key: q.Name, Value: q.Value})
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(d.DynamicMetadata),
	}
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
func InvalidRequest(description string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_BadRequest, codes.InvalidArgument, challenge(ErrInvalidRequest, description),
		ErrInvalidRequest, description, policy.Decision{})
}

// InvalidToken is 401 invalid_token: a token that is malformed, fails
// verification, is revoked or is past its use limit. The policy is not asked.
func InvalidToken(description string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_Unauthorized, codes.Unauthenticated, challenge(ErrInvalidToken, description),
		ErrInvalidToken, description, policy.Decision{})
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
func Denied(d policy.Decision, hadToken bool) *authv3.CheckResponse {
	status := typev3.StatusCode_Unauthorized
	if hadToken {
		status = typev3.StatusCode_Forbidden
	}
	if d.HTTPStatus != 0 {
		status = typev3.StatusCode(d.HTTPStatus)
	}
	description := d.Reason
	switch {
	case status == typev3.StatusCode_Forbidden && hadToken:
		return deny(status, codes.PermissionDenied, challenge(ErrInsufficientScope, description), ErrInsufficientScope, description, d)
	case status == typev3.StatusCode_Unauthorized:
		if description == "" && !hadToken {
			description = "a bearer token is required"
		}
		return deny(status, codes.Unauthenticated, challenge("", ""), errUnauthorized, description, d)
	}
	return deny(status, codes.PermissionDenied, "", errAccessDenied, description, d)
}

// Unavailable is 503 without a challenge: tokenwise could not do its job,
// for example the use-limit store is unreachable. Envoy passes it on.
func Unavailable(description string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_ServiceUnavailable, codes.Unavailable, "", errUnavailable, description, policy.Decision{})
}

// PayloadTooLarge is 413 without a challenge: the request body is too large
// or too complex for the policy to read (the credentials are not at fault).
func PayloadTooLarge(description string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_PayloadTooLarge, codes.InvalidArgument, "", ErrInvalidRequest, description, policy.Decision{})
}

// InternalError is 500: the policy failed or tokenwise itself did.
// It is a deny, never a gRPC error, which failure_mode_allow would let through.
func InternalError(description string) *authv3.CheckResponse {
	return deny(typev3.StatusCode_InternalServerError, codes.Internal, "", errServer, description, policy.Decision{})
}

func deny(status typev3.StatusCode, code codes.Code, www, errCode, description string, d policy.Decision) *authv3.CheckResponse {
	headers := d.Headers
	body := d.Body
	if body == "" {
		body = jsonBody(errCode, description)
		headers = append([]policy.Header{{Name: "content-type", Value: "application/json"}}, headers...)
	}
	if www != "" && !hasHeader(headers, "www-authenticate") {
		headers = append(headers, policy.Header{Name: "www-authenticate", Value: www})
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: description},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: status},
			Headers: overwrite(headers),
			Body:    body,
		}},
		DynamicMetadata: metadata(d.DynamicMetadata),
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

// overwrite builds header options that replace any header of the same name.
func overwrite(headers []policy.Header) []*corev3.HeaderValueOption {
	return options(headers, false)
}

// add builds header options that are added beside existing headers.
func add(headers []policy.Header) []*corev3.HeaderValueOption {
	return options(headers, true)
}

func options(headers []policy.Header, appendValue bool) []*corev3.HeaderValueOption {
	if len(headers) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, 0, len(headers))
	seen := map[string]bool{}
	for _, h := range headers {
		name := strings.ToLower(h.Name)
		// A second value for a name we overwrite must be appended, or it
		// would replace the first.
		app := appendValue || seen[name]
		seen[name] = true
		out = append(out, &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: name, Value: h.Value},
			Append: boolValue(app),
		})
	}
	return out
}

// appendTrue and appendFalse are shared by every answer: a response is only
// read (marshalled) once built, so one value each serves them all.
var appendTrue, appendFalse = wrapperspb.Bool(true), wrapperspb.Bool(false)

func boolValue(b bool) *wrapperspb.BoolValue {
	if b {
		return appendTrue
	}
	return appendFalse
}

func metadata(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		// The policy package hands over JSON values only; a value structpb
		// cannot hold is dropped rather than failing an allowed request.
		return nil
	}
	return s
}
