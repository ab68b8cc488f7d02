package grpcfront

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenwise/tokenwise/authz/reply"
)

// Response renders the pipeline's answer as Envoy's CheckResponse: an allow
// as OK with the upstream rewrites, a deny as a denied HTTP response with a
// non-OK gRPC status (the code follows the answer's error, the message is
// its description), and the policy's dynamic metadata on either.
func Response(a reply.Reply) *authv3.CheckResponse {
	if a.Allowed {
		return allowResponse(a)
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(denyCode(a.Error)), Message: a.Description},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(a.Status)},
			Headers: options(a.ResponseHeaders),
			Body:    a.Body,
		}},
		DynamicMetadata: metadata(a.Metadata),
	}
}

func allowResponse(a reply.Reply) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{
		Headers:                 options(a.RequestHeaders),
		HeadersToRemove:         a.RemoveRequestHeaders,
		ResponseHeadersToAdd:    options(a.ResponseHeaders),
		QueryParametersToRemove: a.RemoveQuery,
	}
	for _, q := range a.SetQuery {
		ok.QueryParametersToSet = append(ok.QueryParametersToSet, &corev3.QueryParameter{Key: q.Name, Value: q.Value})
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(a.Metadata),
	}
}

// denyCode is a deny's gRPC status code, from its OAuth error. It is never
// OK: Envoy would let an OK through whatever the HTTP response says. A
// document (no error) is PermissionDenied, which Envoy relays as it is.
func denyCode(errCode string) codes.Code {
	switch errCode {
	case reply.ErrInvalidRequest:
		return codes.InvalidArgument
	case reply.ErrInvalidToken, reply.ErrUnauthorized, reply.ErrInvalidDPoPProof, reply.ErrUseDPoPNonce:
		return codes.Unauthenticated
	case reply.ErrUnavailable:
		return codes.Unavailable
	case reply.ErrServer:
		return codes.Internal
	case reply.ErrRateLimited:
		return codes.ResourceExhausted
	}
	return codes.PermissionDenied
}

// options renders headers with append always explicit: Envoy reads an
// unset append as append_action, whose default would add a header meant to
// overwrite beside a client's header of the same name.
func options(headers []reply.Header) []*corev3.HeaderValueOption {
	if len(headers) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, len(headers))
	for i, h := range headers {
		out[i] = &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value},
			Append: boolValue(h.Append),
		}
	}
	return out
}

// appendTrue and appendFalse are shared by every response: a response is
// only read (marshalled) once built, so one value each serves them all.
var appendTrue, appendFalse = wrapperspb.Bool(true), wrapperspb.Bool(false)

func boolValue(b bool) *wrapperspb.BoolValue {
	if b {
		return appendTrue
	}
	return appendFalse
}

// metadata renders the policy's dynamic metadata, nil when there is none.
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
