package answer

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// Document answers a Check with a JSON document tokenwise serves itself
// (RFC 9728 protected resource metadata): a deny whose status is 200, which
// Envoy relays to the client instead of asking the upstream.
func Document(body string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied), Message: "answered by tokenwise"},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: overwrite([]policy.Header{{Name: "content-type", Value: "application/json"}}),
			Body:    body,
		}},
	}
}

// WithResourceMetadata adds resource_metadata="<url>" (RFC 9728 §5.1) to
// every WWW-Authenticate challenge of a 401 answer, so a client can find the
// authorization server from its first refusal. Other answers are returned
// as they are. The header values are replaced, never edited in place.
func WithResourceMetadata(resp *authv3.CheckResponse, url string) *authv3.CheckResponse {
	denied := resp.GetDeniedResponse()
	if url == "" || denied.GetStatus().GetCode() != typev3.StatusCode_Unauthorized {
		return resp
	}
	for i, h := range denied.GetHeaders() {
		if !strings.EqualFold(h.GetHeader().GetKey(), "www-authenticate") || h.GetHeader().GetValue() == "" {
			continue
		}
		h = proto.Clone(h).(*corev3.HeaderValueOption)
		h.Header.Value += `, resource_metadata="` + quotable(url) + `"`
		denied.Headers[i] = h
	}
	return resp
}
