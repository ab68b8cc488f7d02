package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// HTTP authorization mode: the http-* scenarios ask tokenwise's HTTP
// authorization listener as Traefik or Caddy would (GET with the original
// request in X-Forwarded-*), and their floor is a no-op HTTP server driven
// by the same client: HTTP/1.1 with keep-alive, one connection per request
// in flight, as a proxy's auth-request pool holds them.

// httpFloor is the HTTP scenarios' floor: the same requests to a server
// that answers 200 to everything.
var httpFloor = &scenario{name: "http-floor", desc: "no-op HTTP server: 200 to everything, same HTTP/1.1 client",
	method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200, http: true}

// httpTarget is one HTTP server under load.
type httpTarget struct {
	url    string
	client *http.Client
}

// floorFor is the floor a scenario is paired with.
func floorFor(s *scenario) *scenario {
	if s.http {
		return httpFloor
	}
	return floor
}

// floors are the floors the selected scenarios need, for the warm-up.
func (r *runner) floors() []*scenario {
	out := []*scenario{floor}
	for _, s := range r.scenarios {
		if s.http {
			return append(out, httpFloor)
		}
	}
	return out
}

func needsHTTP(sel []*scenario) bool {
	for _, s := range sel {
		if s.http {
			return true
		}
	}
	return false
}

// newHTTPTarget is a keep-alive HTTP/1.1 client for base.
func (e *env) newHTTPTarget(name, addr string) *target {
	tr := &http.Transport{
		MaxIdleConns:        2 * e.opts.Concurrency,
		MaxIdleConnsPerHost: 2 * e.opts.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	e.stops = append(e.stops, tr.CloseIdleConnections)
	return &target{name: name, http: &httpTarget{url: "http://" + addr + "/check", client: &http.Client{Transport: tr}}}
}

// startHTTPFloor runs the no-op HTTP server with the HTTP authorization
// listener's server settings.
func (e *env) startHTTPFloor() (*target, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go serveLabelled(context.Background(), "http-floor", func(context.Context) { _ = srv.Serve(lis) })
	e.stops = append(e.stops, func() { _ = srv.Close() })
	return e.newHTTPTarget("http-floor", lis.Addr().String()), nil
}

// httpHeaders is what a Traefik-like proxy sends for one of s's requests:
// the client's headers and the original request in X-Forwarded-*.
func httpHeaders(s *scenario, worker int) http.Header {
	h := http.Header{}
	for k, v := range newRequest(s, worker).GetAttributes().GetRequest().GetHttp().GetHeaders() {
		if k[0] != ':' && k != "x-forwarded-proto" && k != "x-forwarded-for" {
			h.Set(k, v)
		}
	}
	h.Set("X-Forwarded-Method", s.method)
	h.Set("X-Forwarded-Proto", "https")
	h.Set("X-Forwarded-Host", "api.example.com")
	h.Set("X-Forwarded-Uri", s.path)
	h.Set("X-Forwarded-For", "203.0.113.7")
	return h
}

// checkHTTP sends one authorization request over HTTP; see check.
func (w *worker) checkHTTP(ctx context.Context, start time.Time) bool {
	auth, ok := w.l.feed.value(w.id, w.n)
	if !ok {
		w.l.stop.Store(true)
		return false
	}
	if w.httpHdr == nil {
		w.httpHdr = httpHeaders(w.l.s, w.id)
	}
	if auth != "" {
		w.httpHdr["Authorization"] = []string{auth}
	}
	w.httpHdr["X-Request-Id"] = []string{string(strconv.AppendUint(w.reqID, uint64(w.n), 16))}
	w.n++
	t := w.l.t.http
	req, err := http.NewRequestWithContext(ctx, "GET", t.url, nil)
	if err != nil {
		w.l.fail(err.Error())
		return false
	}
	req.Header = w.httpHdr
	sent := time.Now()
	resp, err := t.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	done := time.Now()
	w.l.lats[w.id] = append(w.l.lats[w.id], int64(done.Sub(start)))
	if w.l.svc != nil {
		w.l.svc[w.id] = append(w.l.svc[w.id], int64(done.Sub(sent)))
	}
	w.l.checks.Add(1)
	if err != nil {
		w.l.fail(err.Error())
	} else if resp.StatusCode != w.l.s.wantStatus {
		w.l.fail(fmt.Sprintf("status %d, want %d", resp.StatusCode, w.l.s.wantStatus))
	}
	return true
}
