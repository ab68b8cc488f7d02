package httpfront

import (
	"context"
	"net/http"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/request"
)

// Decider is the pipeline as the HTTP front end calls it; the server's
// Authorizer provides it.
type Decider interface {
	// Decide answers one request. document reports that a deny is a
	// document tokenwise serves itself, written with its own status.
	Decide(ctx context.Context, req *request.Request) (resp *authv3.CheckResponse, document bool)
	// Refuse answers a request that could not be read (400
	// invalid_request), recorded like any other Check.
	Refuse(ctx context.Context, req *request.Request, err error) *authv3.CheckResponse
}

// Handler answers every method and path as a Check of the original request.
func Handler(d Decider, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		req, err := Request(hr, o)
		if err != nil {
			Write(w, d.Refuse(hr.Context(), req, err), false)
			return
		}
		resp, document := d.Decide(hr.Context(), req)
		Write(w, resp, document)
	})
}
