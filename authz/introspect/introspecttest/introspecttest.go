// Package introspecttest runs a real RFC 7662 token introspection endpoint
// for tests: an httptest.Server that answers from a table of tokens, checks
// client_secret_basic credentials, counts calls, serves an OpenID Connect
// discovery document naming itself, and can fail on demand.
package introspecttest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

// Path is where the endpoint answers.
const Path = "/oauth2/introspect"

// Client credentials the endpoint accepts (client_secret_basic).
const (
	ClientID     = "tokenwise"
	ClientSecret = "introspection:secret%"
)

// Endpoint is an introspection endpoint over a real httptest.Server. Its
// methods are safe for concurrent use.
type Endpoint struct {
	srv   *httptest.Server
	calls atomic.Int64

	mu      sync.Mutex
	answers map[string]map[string]any
	status  int // when non-zero, every introspection is answered with it
}

// New starts an endpoint and closes it on t.Cleanup.
func New(t testing.TB) *Endpoint {
	e := &Endpoint{answers: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, e.introspect)
	mux.HandleFunc("GET "+config.DiscoveryPath, e.discovery)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// Issuer is the issuer identifier its discovery document names: the server's URL.
func (e *Endpoint) Issuer() string { return e.srv.URL }

// URL is the introspection endpoint.
func (e *Endpoint) URL() string { return e.srv.URL + Path }

// Config is an issuer that only introspects, at this endpoint, with
// client_secret_basic and short caches left at their defaults.
func (e *Endpoint) Config(name string) config.Issuer {
	return config.Issuer{
		Name:   name,
		Issuer: e.Issuer(),
		Introspection: &config.Introspection{
			URL: e.URL(), Auth: config.AuthClientSecretBasic, ClientID: ClientID, ClientSecret: ClientSecret,
		},
	}
}

// Set makes token active with the answer's members (active is added).
// Unknown tokens are inactive.
func (e *Endpoint) Set(token string, answer map[string]any) {
	a := map[string]any{"active": true}
	for k, v := range answer {
		a[k] = v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answers[token] = a
}

// Revoke makes token inactive.
func (e *Endpoint) Revoke(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.answers, token)
}

// FailWith answers every introspection with status (0: answer normally).
func (e *Endpoint) FailWith(status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status = status
}

// Calls is how many introspection requests arrived.
func (e *Endpoint) Calls() int64 { return e.calls.Load() }

// Close takes the endpoint down: connections are refused from now on.
func (e *Endpoint) Close() { e.srv.Close() }

func (e *Endpoint) introspect(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	if !authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	e.mu.Lock()
	answer, ok := e.answers[r.PostFormValue("token")]
	status := e.status
	e.mu.Unlock()
	if status != 0 {
		http.Error(w, "failing as told", status)
		return
	}
	if !ok {
		answer = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// authenticated checks client_secret_basic as RFC 6749 §2.3.1 has it: the
// id and secret are form-urlencoded inside the Basic credentials.
func authenticated(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	id, err1 := url.QueryUnescape(u)
	secret, err2 := url.QueryUnescape(p)
	return err1 == nil && err2 == nil && id == ClientID && secret == ClientSecret &&
		r.PostFormValue("token_type_hint") == "access_token"
}

func (e *Endpoint) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"issuer": e.Issuer(), "introspection_endpoint": e.URL()})
}
