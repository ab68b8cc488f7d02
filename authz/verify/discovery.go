package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/MicahParks/jwkset"
	"golang.org/x/sync/singleflight"

	"github.com/tokenwise/tokenwise/authz/config"
)

// MaxDiscoveryBytes caps an OpenID Connect discovery document.
const MaxDiscoveryBytes = 256 << 10

// discovery learns what an issuer's configuration leaves out (its jwks_uri,
// its introspection_endpoint) from its OpenID Connect provider configuration
// (OpenID Connect Discovery 1.0 §4). The document is read once and kept; it
// is read again only after a JWKS download fails, since that is when a
// provider that moved its keys would otherwise be lost for good. Concurrent
// readers share one read.
type discovery struct {
	endpoint      string
	issuer        string
	allowInsecure bool
	client        *http.Client
	flight        singleflight.Group

	mu  sync.Mutex
	doc *discoveryDoc // nil until the document has been read
}

// discoveryDoc is the part of the provider configuration tokenwise reads.
type discoveryDoc struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// newDiscovery returns nil when cfg leaves nothing to discover.
func newDiscovery(cfg config.Issuer, client *http.Client) *discovery {
	endpoint := cfg.DiscoveryDocument()
	if endpoint == "" {
		return nil
	}
	return &discovery{endpoint: endpoint, issuer: cfg.Issuer, allowInsecure: cfg.AllowInsecureJWKSURL, client: client}
}

// checkKeyURL checks the URL an issuer's keys are found through: its
// discovery document when it has no jwks_url, else the jwks_url.
func checkKeyURL(cfg config.Issuer) error {
	what, raw := "jwks_url", cfg.JWKSURL
	if endpoint := cfg.DiscoveryEndpoint(); endpoint != "" {
		what, raw = "discovery URL", endpoint
	}
	if u, err := url.ParseRequestURI(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", what, raw)
	}
	return nil
}

// jwksURL returns the jwks_uri, reading the document when none is known
// yet or when fresh asks for a new reading.
func (d *discovery) jwksURL(ctx context.Context, fresh bool) (string, error) {
	doc, err := d.document(ctx, fresh)
	if err != nil {
		return "", err
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery %s: document has no jwks_uri", d.endpoint)
	}
	return doc.JWKSURI, nil
}

// introspectionURL returns the introspection_endpoint (RFC 8414 §2 names it
// for OAuth servers; OpenID providers that introspect publish it too).
// Its URL rule is the introspection client's to apply.
func (d *discovery) introspectionURL(ctx context.Context) (string, error) {
	doc, err := d.document(ctx, false)
	if err != nil {
		return "", err
	}
	if doc.IntrospectionEndpoint == "" {
		return "", fmt.Errorf("discovery %s: document has no introspection_endpoint", d.endpoint)
	}
	return doc.IntrospectionEndpoint, nil
}

// document returns the document read last, reading it when none was read
// yet or when fresh asks for a new reading.
func (d *discovery) document(ctx context.Context, fresh bool) (*discoveryDoc, error) {
	d.mu.Lock()
	known := d.doc
	d.mu.Unlock()
	if known != nil && !fresh {
		return known, nil
	}
	v, err, _ := d.flight.Do("", func() (any, error) { return d.read(ctx) })
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", d.endpoint, err)
	}
	doc := v.(*discoveryDoc)
	d.mu.Lock()
	d.doc = doc
	d.mu.Unlock()
	return doc, nil
}

// read GETs the provider configuration and checks it.
func (d *discovery) read(ctx context.Context) (*discoveryDoc, error) {
	body, err := getBounded(ctx, d.client, d.endpoint, "application/json", MaxDiscoveryBytes)
	if err != nil {
		return nil, err
	}
	var doc discoveryDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	// §4.3: the document is only good for the issuer it names, exactly;
	// otherwise one provider could hand out keys for another's tokens.
	if doc.Issuer != d.issuer {
		return nil, fmt.Errorf("document names issuer %q, not the configured %q", doc.Issuer, d.issuer)
	}
	if doc.JWKSURI != "" {
		if err := config.CheckJWKSURL(doc.JWKSURI, d.allowInsecure); err != nil {
			return nil, fmt.Errorf("jwks_uri %q: %w", doc.JWKSURI, err)
		}
	}
	return &doc, nil
}

// getBounded GETs url and returns its 200 body, refusing more than max bytes.
func getBounded(ctx context.Context, client *http.Client, url, accept string, max int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return body, nil
}

// fetchKeys downloads the issuer's keys. With discovery it first learns the
// jwks_uri; when that download fails it reads the document again and, if the
// jwks_uri moved, downloads from the new one at once.
func (s *keySource) fetchKeys(ctx context.Context) ([]jwkset.JWK, error) {
	if s.disc == nil {
		return s.download(ctx)
	}
	uri, err := s.disc.jwksURL(ctx, false)
	if err != nil {
		return nil, err
	}
	keys, err := s.downloadFrom(ctx, uri)
	if err == nil {
		return keys, nil
	}
	fresh, derr := s.disc.jwksURL(ctx, true)
	if derr != nil {
		return nil, errors.Join(fmt.Errorf("jwks %s: %w", uri, err), derr)
	}
	if fresh == uri {
		return nil, fmt.Errorf("jwks %s: %w", uri, err)
	}
	s.log.Info("jwks_uri changed", "issuer", s.name, "from", uri, "to", fresh)
	return s.downloadFrom(ctx, fresh)
}

// source names where the keys come from, for logs.
func (s *keySource) source() string {
	if s.disc != nil {
		return s.disc.endpoint
	}
	return s.url
}
