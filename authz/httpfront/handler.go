package httpfront

import (
	"context"
	"net/http"

	"github.com/tokenwise/tokenwise/authz/reply"
	"github.com/tokenwise/tokenwise/authz/request"
)

// Decider is the pipeline as the HTTP front end calls it; the server's
// Authorizer provides it.
type Decider interface {
	// Decide answers one request. document reports that a deny is a
	// document tokenwise serves itself, written with its own status.
	Decide(ctx context.Context, req *request.Request) (a reply.Reply, document bool)
	// Refuse answers a request that could not be read (400
	// invalid_request), recorded like any other Check.
	Refuse(ctx context.Context, req *request.Request, err error) reply.Reply
}

// Handler answers every method and path as a Check of the original request.
func Handler(d Decider, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		req, err := Request(hr, o)
		if err != nil {
			Write(w, d.Refuse(hr.Context(), req, err), false)
			return
		}
		a, document := d.Decide(hr.Context(), req)
		Write(w, a, document)
	})
}
