// Package config loads and validates tokenwise's YAML configuration.
//
// The file is strict: an unknown key is an error naming the key and the file.
// ${VAR} references are expanded from the environment before parsing, and
// every default is applied here so later stages can read values as they are.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	GRPC      GRPC      `yaml:"grpc"`
	HTTP      HTTP      `yaml:"http"`
	Log       Log       `yaml:"log"`
	Issuers   []Issuer  `yaml:"issuers"`
	Token     Token     `yaml:"token"`
	Policy    Policy    `yaml:"policy"`
	UseLimits UseLimits `yaml:"use_limits"`
	Forward   Forward   `yaml:"forward"`
	Admin     Admin     `yaml:"admin"`
	Tracing   Tracing   `yaml:"tracing"`
}

// GRPC is the gRPC listener: ext_authz v3, grpc.health.v1 and tokenwise.v1.
type GRPC struct {
	Address string `yaml:"address"`
	TLS     TLS    `yaml:"tls"`
	// Reflection is a pointer so an absent key can default to true.
	Reflection *bool `yaml:"reflection"`
	// MaxConcurrentStreams bounds the streams on one HTTP/2 connection (0: grpc-go's default).
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
}

// ReflectionEnabled reports whether gRPC server reflection is on (the default).
func (g GRPC) ReflectionEnabled() bool { return g.Reflection == nil || *g.Reflection }

// TLS configures server TLS; ClientCAFile turns on mutual TLS.
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// HTTP is the operations listener: /healthz, /readyz, /metrics.
type HTTP struct {
	Address string `yaml:"address"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// Issuer is one trusted token issuer, chosen by a token's iss claim.
type Issuer struct {
	Name              string        `yaml:"name"`
	Issuer            string        `yaml:"issuer"`
	JWKSURL           string        `yaml:"jwks_url"`
	Audiences         []string      `yaml:"audiences"`
	Algorithms        []string      `yaml:"algorithms"`
	Leeway            time.Duration `yaml:"leeway"`
	RequireExpiration *bool         `yaml:"require_expiration"`
	MaxLifetime       time.Duration `yaml:"max_lifetime"`
	Typ               string        `yaml:"typ"`
	RefreshInterval   time.Duration `yaml:"refresh_interval"`
	// FetchTimeout bounds one JWKS fetch.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MinRefreshInterval is the shortest gap between two refreshes that
	// unknown key ids trigger, so random kids cannot hammer the issuer.
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	// AllowInsecureJWKSURL lets jwks_url be plain http on a non-loopback
	// host. Keys fetched without TLS can be replaced by anyone on the path,
	// so it is off by default; loopback http is always allowed.
	AllowInsecureJWKSURL bool `yaml:"allow_insecure_jwks_url"`
	// DiscoveryURL is the OpenID Connect discovery document that names the
	// JWKS (jwks_uri). Used only when JWKSURL is empty; when both are empty
	// it defaults to <issuer>/.well-known/openid-configuration.
	DiscoveryURL string `yaml:"discovery_url"`
}

// DiscoveryPath is where OpenID Connect Discovery 1.0 §4 puts the provider
// configuration below the issuer.
const DiscoveryPath = "/.well-known/openid-configuration"

// DiscoveryEndpoint is the discovery document to read for the JWKS URL, or
// "" when jwks_url is given and discovery is not used.
func (i Issuer) DiscoveryEndpoint() string {
	switch {
	case i.JWKSURL != "":
		return ""
	case i.DiscoveryURL != "":
		return i.DiscoveryURL
	}
	// §4: the issuer with any trailing "/" removed, then the well-known path.
	return strings.TrimSuffix(i.Issuer, "/") + DiscoveryPath
}

// CheckJWKSURL applies jwks_url's rule to any URL keys come from, such as a
// jwks_uri learned through discovery: https, or http only to a loopback host
// or when allowInsecure is set.
func CheckJWKSURL(raw string, allowInsecure bool) error {
	return checkJWKSURL(raw, allowInsecure)
}

// ExpirationRequired reports whether a token without exp is invalid (the default).
func (i Issuer) ExpirationRequired() bool { return i.RequireExpiration == nil || *i.RequireExpiration }

// DefaultAlgorithms are the asymmetric algorithms allowed when an issuer names none.
// HMAC and none are never allowed.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Token says where a bearer token is looked for in a request.
type Token struct {
	Header         string `yaml:"header"`
	Cookie         string `yaml:"cookie"`
	QueryParameter string `yaml:"query_parameter"`
	// MaxBytes caps a token's length; a longer one is refused before any decoding.
	MaxBytes int `yaml:"max_bytes"`
	// CacheSize is how many verified tokens are remembered, so a reused token
	// skips its signature check (0: the default, 10000; negative: no cache).
	CacheSize int `yaml:"cache_size"`
}

// DefaultMaxTokenBytes is token.max_bytes when the file does not set it.
const DefaultMaxTokenBytes = 16 << 10

// Policy says which Rego files to load and which rule to ask.
type Policy struct {
	Paths []string `yaml:"paths"`
	Query string   `yaml:"query"`
	// MaxBodyBytes caps the request body parsed into input.parsed_body.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// DecisionCacheSize is how many decisions are remembered, keyed on the
	// input the policy reads; 0 turns the cache off. A pointer, so an absent
	// key can mean the default.
	DecisionCacheSize *int `yaml:"decision_cache_size"`
}

// DefaultDecisionCacheSize is policy.decision_cache_size when the file does not set it.
const DefaultDecisionCacheSize = 10000

// DecisionCacheEntries is policy.decision_cache_size, or its default.
func (p Policy) DecisionCacheEntries() int {
	if p.DecisionCacheSize == nil {
		return DefaultDecisionCacheSize
	}
	return *p.DecisionCacheSize
}

// UseLimits configures where one-time and N-use counts are kept.
type UseLimits struct {
	Store        string        `yaml:"store"`
	Redis        Redis         `yaml:"redis"`
	MaxTTL       time.Duration `yaml:"max_ttl"`
	OnStoreError string        `yaml:"on_store_error"`
}

// Redis is the shared use-limit store.
type Redis struct {
	Address   string `yaml:"address"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	DB        int    `yaml:"db"`
	TLS       bool   `yaml:"tls"`
	KeyPrefix string `yaml:"key_prefix"`
}

// Forward says what tokenwise adds to or removes from the upstream request.
type Forward struct {
	// ClaimsToHeaders maps a claim name to the upstream header that carries its value.
	ClaimsToHeaders     map[string]string `yaml:"claims_to_headers"`
	RemoveAuthorization bool              `yaml:"remove_authorization"`
}

// Tracing exports OpenTelemetry spans for each Check over OTLP/gRPC. It is
// off unless an endpoint is set.
type Tracing struct {
	// OTLPEndpoint is the collector's host:port, e.g. otel-collector:4317.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Insecure sends spans without TLS (a collector beside tokenwise).
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of traces sampled when Envoy did not decide
	// (a parent's sampling decision is always followed). Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName names tokenwise in the traces (default tokenwise).
	ServiceName string `yaml:"service_name"`
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.OTLPEndpoint != "" }

// Admin is the credential for tokenwise.v1.TokenAdmin.
type Admin struct {
	Token        string `yaml:"token"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Default returns a configuration with every default set and no issuers.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

// Load reads, expands and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse expands ${VAR} references in data, decodes it strictly and validates it.
func Parse(data []byte) (*Config, error) {
	expanded, err := expand(string(data))
	if err != nil {
		return nil, err
	}
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, cleanYAMLError(err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// cleanYAMLError turns yaml.v3's multi-line TypeError into one line.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

var varPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} with the environment's value; an unset variable
// expands to the empty string, as in a shell, so optional secrets may be absent.
func expand(s string) (string, error) {
	return varPattern.ReplaceAllStringFunc(s, func(m string) string {
		return os.Getenv(varPattern.FindStringSubmatch(m)[1])
	}), nil
}

func (c *Config) applyDefaults() {
	setDefault(&c.GRPC.Address, "127.0.0.1:9191")
	setDefault(&c.HTTP.Address, "127.0.0.1:9192")
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Token.Header, "authorization")
	c.Token.Header = strings.ToLower(c.Token.Header)
	if c.Token.MaxBytes == 0 {
		c.Token.MaxBytes = DefaultMaxTokenBytes
	}
	if len(c.Policy.Paths) == 0 {
		c.Policy.Paths = []string{"policies/"}
	}
	setDefault(&c.Policy.Query, "data.envoy.authz.allow")
	if c.Policy.MaxBodyBytes == 0 {
		c.Policy.MaxBodyBytes = 1 << 20
	}
	setDefault(&c.Tracing.ServiceName, "tokenwise")
	setDefault(&c.UseLimits.Store, "memory")
	setDefault(&c.UseLimits.OnStoreError, "deny")
	setDefault(&c.UseLimits.Redis.Address, "127.0.0.1:6379")
	setDefault(&c.UseLimits.Redis.KeyPrefix, "tokenwise:")
	if c.UseLimits.MaxTTL == 0 {
		c.UseLimits.MaxTTL = 24 * time.Hour
	}
	for i := range c.Issuers {
		c.Issuers[i].applyDefaults()
	}
}

func (i *Issuer) applyDefaults() {
	if len(i.Algorithms) == 0 {
		i.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if i.Leeway == 0 {
		i.Leeway = 30 * time.Second
	}
	if i.RefreshInterval == 0 {
		i.RefreshInterval = 5 * time.Minute
	}
	if i.FetchTimeout == 0 {
		i.FetchTimeout = 5 * time.Second
	}
	if i.MinRefreshInterval == 0 {
		i.MinRefreshInterval = 10 * time.Second
	}
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate reports the first fault in the configuration as one line.
func (c *Config) Validate() error {
	for _, addr := range []struct{ key, value string }{{"grpc.address", c.GRPC.Address}, {"http.address", c.HTTP.Address}} {
		if _, _, err := net.SplitHostPort(addr.value); err != nil {
			return fmt.Errorf("%s %q: %v", addr.key, addr.value, err)
		}
	}
	if (c.GRPC.TLS.CertFile == "") != (c.GRPC.TLS.KeyFile == "") {
		return errors.New("grpc.tls: cert_file and key_file must be set together")
	}
	if c.GRPC.TLS.ClientCAFile != "" && !c.GRPC.TLS.Enabled() {
		return errors.New("grpc.tls.client_ca_file needs cert_file and key_file")
	}
	if c.Admin.ClientCAFile != "" && !c.GRPC.TLS.Enabled() {
		return errors.New("admin.client_ca_file needs grpc.tls cert_file and key_file: client certificates need TLS")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if err := c.validateIssuers(); err != nil {
		return err
	}
	if c.Token.Header == "" && c.Token.Cookie == "" && c.Token.QueryParameter == "" {
		return errors.New("token: no source configured")
	}
	if c.Token.MaxBytes < 0 {
		return errors.New("token.max_bytes must be positive")
	}
	if n := c.Policy.DecisionCacheSize; n != nil && *n < 0 {
		return fmt.Errorf("policy.decision_cache_size %d: must be 0 (off) or more", *n)
	}
	if !strings.HasPrefix(c.Policy.Query, "data.") {
		return fmt.Errorf("policy.query %q: must start with data.", c.Policy.Query)
	}
	if r := c.Tracing.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		return fmt.Errorf("tracing.sample_ratio %v: want a number from 0 to 1", *r)
	}
	if !slices.Contains([]string{"memory", "redis"}, c.UseLimits.Store) {
		return fmt.Errorf("use_limits.store %q: want memory or redis", c.UseLimits.Store)
	}
	if !slices.Contains([]string{"deny", "allow"}, c.UseLimits.OnStoreError) {
		return fmt.Errorf("use_limits.on_store_error %q: want deny or allow", c.UseLimits.OnStoreError)
	}
	if c.UseLimits.MaxTTL < 0 {
		return errors.New("use_limits.max_ttl must be positive")
	}
	for claim, header := range c.Forward.ClaimsToHeaders {
		if claim == "" || header == "" || header != strings.ToLower(header) || strings.HasPrefix(header, ":") {
			return fmt.Errorf("forward.claims_to_headers %q: %q: want a claim and a lowercase header name", claim, header)
		}
	}
	return nil
}

func (c *Config) validateIssuers() error {
	names := map[string]bool{}
	issuers := map[string]bool{}
	for n, is := range c.Issuers {
		where := fmt.Sprintf("issuers[%d]", n)
		if !namePattern.MatchString(is.Name) {
			return fmt.Errorf("%s.name %q: want letters, digits, '.', '_' or '-'", where, is.Name)
		}
		where = fmt.Sprintf("issuer %q", is.Name)
		if names[is.Name] {
			return fmt.Errorf("%s: name used twice", where)
		}
		names[is.Name] = true
		if is.Issuer == "" {
			return fmt.Errorf("%s: issuer is required", where)
		}
		if issuers[is.Issuer] {
			return fmt.Errorf("%s: issuer %q used twice", where, is.Issuer)
		}
		issuers[is.Issuer] = true
		if err := is.validateKeyURLs(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, alg := range is.Algorithms {
			if !slices.Contains(DefaultAlgorithms, alg) {
				return fmt.Errorf("%s: algorithm %q not allowed (want asymmetric: %s)", where, alg, strings.Join(DefaultAlgorithms, " "))
			}
		}
		if is.Leeway < 0 || is.MaxLifetime < 0 || is.RefreshInterval < 0 || is.FetchTimeout < 0 || is.MinRefreshInterval < 0 {
			return fmt.Errorf("%s: durations must not be negative", where)
		}
	}
	return nil
}

// validateKeyURLs checks where the issuer's keys come from: jwks_url, or
// else the discovery document (discovery_url or the issuer's well-known URL),
// which must meet the same https rule because it names the keys' URL.
func (i Issuer) validateKeyURLs() error {
	if i.JWKSURL != "" {
		if i.DiscoveryURL != "" {
			return errors.New("set jwks_url or discovery_url, not both")
		}
		if err := checkJWKSURL(i.JWKSURL, i.AllowInsecureJWKSURL); err != nil {
			return fmt.Errorf("jwks_url %q: %v", i.JWKSURL, err)
		}
		return nil
	}
	endpoint := i.DiscoveryEndpoint()
	if err := checkJWKSURL(endpoint, i.AllowInsecureJWKSURL); err != nil {
		if i.DiscoveryURL == "" {
			return fmt.Errorf("jwks_url is required: the issuer gives no usable discovery URL (%q: %v)", endpoint, err)
		}
		return fmt.Errorf("discovery_url %q: %v", endpoint, err)
	}
	return nil
}

// checkJWKSURL requires https: keys fetched over plain http can be swapped by
// anyone on the path. Plain http is allowed to a loopback host (a sidecar or
// a test) or when the issuer opts in with allow_insecure_jwks_url.
func checkJWKSURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errors.New("not an absolute http(s) URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must be https (http only for a loopback host, or with allow_insecure_jwks_url: true)")
	}
	return errors.New("not an absolute http(s) URL")
}

// isLoopback reports whether host is localhost, 127.0.0.0/8 or ::1. Other
// names are not resolved: what they resolve to can change.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
