package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// MaxSafeLeeway is the clock skew above which Warnings speaks up: a longer
// leeway keeps expired tokens working that long.
const MaxSafeLeeway = 5 * time.Minute

// RequireIssuers reports a configuration that trusts no issuer: every token
// would be refused. serve, validate and check need one or more; dev adds
// its own, so Validate alone does not ask.
func (c *Config) RequireIssuers() error {
	if len(c.Issuers) == 0 {
		return errors.New("issuers: none configured; add one or more (name, issuer, and jwks_url or discovery)")
	}
	return nil
}

// Warnings lists settings that work but weaken security, one line each,
// naming the YAML path: validate prints them, serve logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	for i, is := range c.Issuers {
		where := fmt.Sprintf("issuers[%d] (%s)", i, is.Name)
		if is.Leeway > MaxSafeLeeway {
			w = append(w, fmt.Sprintf("%s.leeway %s is over %s: expired tokens stay valid that long", where, is.Leeway, MaxSafeLeeway))
		}
		if is.AllowInsecureJWKSURL && insecureRemote(is.JWKSURL, is.DiscoveryEndpoint()) {
			w = append(w, fmt.Sprintf("%s.allow_insecure_jwks_url: keys are fetched over plain http from a host that is not loopback; anyone on the path can swap them", where))
		}
	}
	if c.UseLimits.OnStoreError == "allow" {
		w = append(w, "use_limits.on_store_error: allow lets one-time and limited tokens through, uncounted, while the store is unreachable")
	}
	if c.Token.QueryParameter != "" {
		w = append(w, fmt.Sprintf("token.query_parameter %q: tokens in URLs end up in access logs, browser history and Referer headers (RFC 6750 §2.3)", c.Token.QueryParameter))
	}
	return w
}

// insecureRemote reports whether any of the URLs is plain http to a host
// that is not loopback.
func insecureRemote(urls ...string) bool {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return true
		}
	}
	return false
}
