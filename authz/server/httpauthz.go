package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/httpfront"
	"github.com/tokenwise/tokenwise/authz/reply"
	"github.com/tokenwise/tokenwise/authz/request"
)

// labelDocument is the result label of a Check that tokenwise answered
// with its protected resource metadata.
const labelDocument = "resource_metadata"

// Outcome is the answer to one Check, whichever front end asked.
type Outcome struct {
	// Reply is the pipeline's answer, which the front end renders
	// (grpcfront.Response, httpfront.Write).
	Reply reply.Reply
	// Allowed says the request may go upstream.
	Allowed bool
	// Status is a deny's HTTP status (0 on allow).
	Status int
	// Reason is the short, bounded reason metrics count.
	Reason string
	// Document marks a deny that is a document tokenwise serves itself
	// (RFC 9728 metadata), shown to the client with its own status.
	Document bool
}

// Decide runs the pipeline for a request either front end built, with the
// span, the decision log and the metrics, as Check does for gRPC. A panic
// becomes a 500 deny.
func (a *Authorizer) Decide(ctx context.Context, req *request.Request) Outcome {
	return a.run(ctx, req, nil).outcomeOf()
}

// Refuse answers a request a front end could not read: 400
// invalid_request, with err's text as the description, logged and counted
// like any other Check.
func (a *Authorizer) Refuse(ctx context.Context, req *request.Request, err error) Outcome {
	bad := fail(answer.InvalidRequest(err.Error()), "invalid_request", 400)
	return a.run(ctx, req, &bad).outcomeOf()
}

func (r result) outcomeOf() Outcome {
	return Outcome{Reply: r.reply, Allowed: r.outcome == "allow", Status: r.status, Reason: r.label, Document: r.label == labelDocument}
}

// metadataDocument answers a GET of the protected resource metadata's path
// with the document, before any token is looked for: the document is public.
func (a *Authorizer) metadataDocument(req *request.Request) (result, bool) {
	if !a.resource.Serves(req.Method, req.Path) {
		return result{}, false
	}
	return result{reply: answer.Document(a.resource.Document()), outcome: "deny", label: labelDocument, reason: labelDocument, status: 200}, true
}

// withResourceMetadata points every 401 challenge at the metadata (RFC 9728 §5.1).
func (a *Authorizer) withResourceMetadata(ans reply.Reply) reply.Reply {
	if a.resource == nil {
		return ans
	}
	return answer.WithResourceMetadata(ans, a.resource.URL())
}

// httpDecider adapts the Authorizer to the HTTP front end.
type httpDecider struct{ a *Authorizer }

func (d httpDecider) Decide(ctx context.Context, req *request.Request) (reply.Reply, bool) {
	o := d.a.Decide(ctx, req)
	return o.Reply, o.Document
}

func (d httpDecider) Refuse(ctx context.Context, req *request.Request, err error) reply.Reply {
	return d.a.Refuse(ctx, req, err).Reply
}

// newHTTPAuthz builds the HTTP authorization listener's server; nil when
// http_authz.address is empty.
func (s *Server) newHTTPAuthz() (*http.Server, error) {
	c := s.cfg.HTTPAuthz
	if !c.Enabled() {
		return nil, nil
	}
	opts := httpfront.Options{PathPrefix: c.PathPrefix, MaxBodyBytes: s.cfg.Policy.MaxBodyBytes}
	for _, p := range c.TrustedProxies {
		prefix, err := config.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("http_authz.trusted_proxies %q: %w", p, err)
		}
		opts.TrustedProxies = append(opts.TrustedProxies, prefix)
	}
	srv := &http.Server{
		Handler:           httpfront.Handler(httpDecider{s.authz}, opts),
		ReadHeaderTimeout: 10 * time.Second,
		// Proxies keep connections to their auth service open and reuse them.
		IdleTimeout: 2 * time.Minute,
	}
	if c.TLS.Enabled() {
		tc, err := httpAuthzTLS(c.TLS)
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = tc
	}
	return srv, nil
}

// httpAuthzTLS is the listener's server TLS; client_ca_file requires proxies
// to present a certificate that CA signed.
func httpAuthzTLS(c config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http_authz.tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if c.ClientCAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(c.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("http_authz.tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("http_authz.tls.client_ca_file %s: no PEM certificates", c.ClientCAFile)
	}
	tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return tc, nil
}

// listenHTTPAuthz binds the HTTP authorization listener when it is on.
func (s *Server) listenHTTPAuthz() error {
	if s.httpAuthz == nil {
		return nil
	}
	lis, err := net.Listen("tcp", s.cfg.HTTPAuthz.Address)
	if err != nil {
		return fmt.Errorf("http_authz listener: %w", err)
	}
	s.httpAuthzLis = lis
	return nil
}

// HTTPAuthzAddr is the HTTP authorization listener's address once Listen
// has run ("" when it is off).
func (s *Server) HTTPAuthzAddr() string {
	if s.httpAuthzLis == nil {
		return ""
	}
	return s.httpAuthzLis.Addr().String()
}

// serveHTTPAuthz serves the HTTP authorization listener until shutdown;
// Serve starts it only when the listener is on.
func (s *Server) serveHTTPAuthz() error {
	var err error
	if s.httpAuthz.TLSConfig != nil {
		err = s.httpAuthz.ServeTLS(s.httpAuthzLis, "", "")
	} else {
		err = s.httpAuthz.Serve(s.httpAuthzLis)
	}
	return ignoreClosed(err)
}

// drainHTTPAuthz stops accepting authorization requests and waits, up to
// the drain timeout, for those in flight; then closes what is left.
func (s *Server) drainHTTPAuthz() {
	if s.httpAuthz == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	if err := s.httpAuthz.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Warn("http_authz drain timed out; closing remaining connections")
		_ = s.httpAuthz.Close()
	}
}
