package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/source"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// These are unit tests of the Check handler's own logic (panic recovery), so
// the verifier and policy are fakes: nothing real can be made to panic on
// demand, and that is the point of the fakes.

// panicky is a Verifier and Policy that panic when told to.
type panicky struct {
	mu            sync.Mutex
	verifyPanics  bool
	decidePanics  bool
	decideAllowed bool
}

func (p *panicky) Verify(context.Context, string) (*verify.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verifyPanics {
		panic("verifier exploded")
	}
	return &verify.Token{Issuer: "corp", Subject: "alice", Claims: map[string]any{"sub": "alice"}}, nil
}

func (p *panicky) Ready() bool { return true }

func (p *panicky) Decide(context.Context, *request.Request, *verify.Token) (policy.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.decidePanics {
		var m map[string]int
		m["nil map write"]++ // a runtime error panic, not just a string
	}
	return policy.Decision{Allowed: p.decideAllowed}, nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func testAuthorizer(fake *panicky) (*Authorizer, *observe.Metrics, *syncBuf) {
	logs := &syncBuf{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	m := observe.NewMetrics()
	return &Authorizer{
		finder:   source.New(config.Token{Header: "authorization"}),
		verifier: fake,
		policy:   fake,
		metrics:  m,
		log:      observe.NewDecisionLog(logger),
		logger:   logger,
	}, m, logs
}

func checkRequest(token string) *authv3.CheckRequest {
	headers := map[string]string{}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/x", Headers: headers},
	}}}
}

func TestPanicBecomes500Deny(t *testing.T) {
	for _, where := range []string{"verify", "policy"} {
		t.Run(where, func(t *testing.T) {
			fake := &panicky{decideAllowed: true, verifyPanics: where == "verify", decidePanics: where == "policy"}
			a, m, logs := testAuthorizer(fake)
			resp, err := a.Check(context.Background(), checkRequest("a.b.c"))
			if err != nil {
				t.Fatalf("Check returned a gRPC error: %v", err)
			}
			if resp.GetStatus().GetCode() != int32(codes.Internal) || resp.GetOkResponse() != nil {
				t.Fatalf("a panic gave %v, want an Internal deny", resp)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 500 {
				t.Fatalf("HTTP status %d, want 500", got)
			}
			if !strings.Contains(logs.String(), "check panicked") || !strings.Contains(logs.String(), `"reason":"panic"`) {
				t.Fatalf("panic not logged with a decision line:\n%s", logs)
			}
			if strings.Contains(logs.String(), "a.b.c") {
				t.Fatal("the token reached the log")
			}
			if v := metric(t, m, "tokenwise_check_panics_total"); v != "1" {
				t.Fatalf("tokenwise_check_panics_total = %q, want 1", v)
			}
			// The handler goes on serving.
			fake.mu.Lock()
			fake.verifyPanics, fake.decidePanics = false, false
			fake.mu.Unlock()
			resp, err = a.Check(context.Background(), checkRequest("a.b.c"))
			if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
				t.Fatalf("after a panic: %v %v, want an allow", resp, err)
			}
		})
	}
}

func TestConcurrentPanicsAreAllDenied(t *testing.T) {
	a, m, _ := testAuthorizer(&panicky{decidePanics: true})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := a.Check(context.Background(), checkRequest(""))
			if err != nil || resp.GetStatus().GetCode() == int32(codes.OK) {
				t.Errorf("panic answered %v %v", resp, err)
			}
		}()
	}
	wg.Wait()
	if v := metric(t, m, "tokenwise_check_panics_total"); v != "32" {
		t.Fatalf("tokenwise_check_panics_total = %q, want 32", v)
	}
}

// metric returns the text value of an unlabelled series from m's handler.
func metric(t *testing.T, m *observe.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// With remove_authorization, a query token that the answer cannot strip is
// refused: after a ";" (Envoy splits on "&" only), or from a proxy asking
// over HTTP, whose answer cannot rewrite the query.
func TestUnremovableQueryTokenIsRefused(t *testing.T) {
	a, _, _ := testAuthorizer(&panicky{decideAllowed: true})
	a.finder = source.New(config.Token{Header: "authorization", QueryParameter: "access_token"})
	a.removeBearer = true
	for _, c := range []struct {
		frontend, path string
		allowed        bool
	}{
		{request.FrontendGRPC, "/x?access_token=a.b.c", true},
		{request.FrontendGRPC, "/x?y=1;access_token=a.b.c", false},
		{request.FrontendHTTP, "/x?access_token=a.b.c", false},
		{request.FrontendHTTP, "/x", true},
	} {
		out := a.Decide(context.Background(), &request.Request{Frontend: c.frontend, Method: "GET", Path: c.path, Headers: map[string]string{}})
		if out.Allowed != c.allowed || !c.allowed && out.Status != 400 {
			t.Errorf("%s %s: allowed %v status %d", c.frontend, c.path, out.Allowed, out.Status)
		}
	}
}
