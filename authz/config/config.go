// Package config loads and validates tokenwise's YAML configuration.
//
// The file is strict: an unknown key or a mistyped value is an error naming
// the file, the YAML path and the nearest known key, in the file's words.
// ${VAR} references in values are expanded from the environment (an unset
// one is an error unless it gives a default, ${VAR:-default}), relative
// paths are relative to the file, and every default is applied here so later
// stages can read values as they are.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokenwise/tokenwise/authz/headername"
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
	// HTTPAuthz is the HTTP authorization listener (off unless its address is set).
	HTTPAuthz HTTPAuthz `yaml:"http_authz"`
	// ResourceMetadata is RFC 9728 protected resource metadata (off unless resource is set).
	ResourceMetadata ResourceMetadata `yaml:"resource_metadata"`
	// RateLimits adjusts how the decisions' rate_limits are enforced.
	RateLimits RateLimits `yaml:"rate_limits"`
	DPoP       DPoP       `yaml:"dpop"`

	// set holds the YAML paths of the keys the file wrote (see Sets).
	set *yaml.Node
}

// GRPC is the gRPC listener: ext_authz v3, grpc.health.v1 and tokenwise.v1.
type GRPC struct {
	Address string `yaml:"address"`
	TLS     TLS    `yaml:"tls"`
	// Reflection is a pointer so an absent key can default to true.
	Reflection *bool `yaml:"reflection"`
	// MaxConcurrentStreams bounds the streams on one HTTP/2 connection (0: grpc-go's default).
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxReceiveBytes is the largest CheckRequest accepted (default:
	// 2 × policy.max_body_bytes + 1 MiB, at least 8 MiB). A bigger one fails
	// in grpc-go before tokenwise sees it, and Envoy's failure_mode_allow
	// would turn that failure into an allow, so keep it above what Envoy
	// sends (with_request_body.max_request_bytes plus the headers).
	MaxReceiveBytes int `yaml:"max_receive_bytes"`
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
	// Format is json (the default for serve) or text (the default for dev).
	Format string `yaml:"format"`
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
	// Introspection checks opaque tokens at the issuer's RFC 7662
	// endpoint; nil when the issuer has none.
	Introspection *Introspection `yaml:"introspection"`
	// ProofOfPossession is optional (bound tokens must be proven, unbound
	// ones pass as Bearer) or required (every token must be bound and proven).
	ProofOfPossession string `yaml:"proof_of_possession"`
	// DPoPProofLifetime is how far in the past a DPoP proof's iat may be.
	DPoPProofLifetime time.Duration `yaml:"dpop_proof_lifetime"`
	// DPoPAlgorithms are the algorithms a DPoP proof may be signed with.
	DPoPAlgorithms []string `yaml:"dpop_algorithms"`
	// DPoPNonce demands a server nonce in every DPoP proof (RFC 9449 §8);
	// it needs dpop.nonce_secret.
	DPoPNonce bool `yaml:"dpop_nonce"`
}

// proof_of_possession values.
const (
	ProofOptional = "optional"
	ProofRequired = "required"
)

// DefaultDPoPProofLifetime is dpop_proof_lifetime when an issuer sets none.
const DefaultDPoPProofLifetime = 60 * time.Second

// DefaultDPoPAlgorithms are the DPoP proof algorithms when an issuer names none.
var DefaultDPoPAlgorithms = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// DPoP holds the DPoP settings every issuer shares.
type DPoP struct {
	// NonceSecret derives the server nonces (dpop_nonce). Every replica must
	// have the same one, so a nonce one issues is accepted by all.
	NonceSecret string `yaml:"nonce_secret"`
	// NonceLifetime is how often nonces rotate; a nonce is accepted for one
	// to two lifetimes (default 5m).
	NonceLifetime time.Duration `yaml:"nonce_lifetime"`
}

// minNonceSecret is the shortest dpop.nonce_secret accepted.
const minNonceSecret = 32

// Introspection is an issuer's RFC 7662 token introspection endpoint.
type Introspection struct {
	// URL is the endpoint; empty: discovery's introspection_endpoint.
	URL string `yaml:"url"`
	// Auth is how tokenwise authenticates to the endpoint: client_secret_basic
	// (the default), client_secret_post, bearer or none.
	Auth         string `yaml:"auth"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// TokenPrefix routes only the opaque tokens that start with it here;
	// at most one introspecting issuer may leave it empty.
	TokenPrefix string `yaml:"token_prefix"`
	// CacheTTL bounds how long an active answer is reused (never past its exp).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeCacheTTL is how long an inactive answer is remembered.
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
	// Timeout bounds one introspection request.
	Timeout time.Duration `yaml:"timeout"`
}

// Introspection client authentication methods (RFC 6749 §2.3.1, RFC 7662 §2.1).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthBearer            = "bearer"
	AuthNone              = "none"
)

// HasKeys reports whether the issuer verifies JWTs with keys: it has a
// jwks_url or a discovery document for them. An issuer that introspects and
// names neither has no keys, so its JWTs are refused, and there is no JWKS
// for readiness to wait for.
func (i Issuer) HasKeys() bool {
	return i.Introspection == nil || i.JWKSURL != "" || i.DiscoveryURL != ""
}

// DiscoveryDocument is the OpenID Connect discovery document read for what
// the configuration leaves out (the JWKS URL, the introspection URL), or ""
// when nothing is left out.
func (i Issuer) DiscoveryDocument() string {
	keys := i.HasKeys() && i.JWKSURL == ""
	introspection := i.Introspection != nil && i.Introspection.URL == ""
	if !keys && !introspection {
		return ""
	}
	if i.DiscoveryURL != "" {
		return i.DiscoveryURL
	}
	return strings.TrimSuffix(i.Issuer, "/") + DiscoveryPath
}

// CheckIntrospectionURL is the rule for an introspection endpoint, also for
// redirects from it: https, or http only to a loopback host. Unlike jwks_url
// there is no opt-out: tokens and client secrets travel on this request.
func CheckIntrospectionURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("not an absolute http(s) URL")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return errors.New("must be https (http only for a loopback host)")
	}
	return nil
}

// DiscoveryPath is where OpenID Connect Discovery 1.0 §4 puts the provider
// configuration below the issuer.
const DiscoveryPath = "/.well-known/openid-configuration"

// DiscoveryEndpoint is the discovery document to read for the JWKS URL, or
// "" when jwks_url is given and discovery is not used.
func (i Issuer) DiscoveryEndpoint() string {
	switch {
	case i.JWKSURL != "", !i.HasKeys():
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
	// MaxBodyElements and MaxBodyDepth bound the JSON values (or form
	// pairs) and the nesting of a body parsed into input.parsed_body; a body
	// over either is refused (413) rather than parsed.
	MaxBodyElements int `yaml:"max_body_elements"`
	MaxBodyDepth    int `yaml:"max_body_depth"`
	// MaxBodyParses is how many bodies are parsed at once (default: the
	// number of CPUs, at least 2); more wait their turn within their Check.
	MaxBodyParses int `yaml:"max_body_parses"`
	// Timeout bounds one policy evaluation (default 1s), within the Check's
	// own deadline; past it the request is denied (500).
	Timeout time.Duration `yaml:"timeout"`
	// DecisionCacheSize is how many decisions are remembered, keyed on the
	// input the policy reads; 0 turns the cache off. A pointer, so an absent
	// key can mean the default.
	DecisionCacheSize *int `yaml:"decision_cache_size"`
}

// Defaults of the policy and gRPC limits.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxBodyElements = 50000
	DefaultMaxBodyDepth    = 64
	DefaultPolicyTimeout   = time.Second
	minReceiveBytes        = 8 << 20
)

// ReceiveLimit is grpc.max_receive_bytes, or its default for maxBody: twice
// the body cap plus 1 MiB for headers and attributes, at least 8 MiB.
func (g GRPC) ReceiveLimit(maxBody int) int {
	if g.MaxReceiveBytes > 0 {
		return g.MaxReceiveBytes
	}
	return max(2*maxBody+(1<<20), minReceiveBytes)
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

// RateLimits adjusts how the rate limits decisions carry are enforced. Their
// counts live in the use-limit store (use_limits.store), whose
// on_store_error also decides what a store fault does to a limited request.
type RateLimits struct {
	// Headers puts RateLimit-Policy and RateLimit on allowed answers for the
	// limit closest to exhaustion (default true; 429s always carry them).
	Headers *bool `yaml:"headers"`
	// Shadow counts and logs refusals but never refuses (for rolling out a limit).
	Shadow bool `yaml:"shadow"`
	// Timeout bounds one store call for rate limits (default 250ms).
	Timeout time.Duration `yaml:"timeout"`
	// MaxKeys bounds the keys the memory store holds (default 1048576).
	MaxKeys int `yaml:"max_keys"`
}

// HeadersEnabled reports whether allowed answers carry the RateLimit headers (the default).
func (r RateLimits) HeadersEnabled() bool { return r.Headers == nil || *r.Headers }

// Redis is the shared use-limit store.
type Redis struct {
	Address   string `yaml:"address"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	DB        int    `yaml:"db"`
	TLS       bool   `yaml:"tls"`
	KeyPrefix string `yaml:"key_prefix"`
	// Mode is standalone (Address), cluster (Addresses are seed nodes) or
	// sentinel (Addresses are sentinels watching SentinelMaster).
	Mode           string   `yaml:"mode"`
	Addresses      []string `yaml:"addresses"`
	SentinelMaster string   `yaml:"sentinel_master"`
	// SentinelPassword authenticates to the sentinels when they have a
	// password of their own (empty: none).
	SentinelPassword string `yaml:"sentinel_password"`
	// WaitReplicas makes a use count only once this many replicas have it (WAIT).
	WaitReplicas int `yaml:"wait_replicas"`
	// WaitTimeout bounds the wait for WaitReplicas (default 100ms).
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// Redis modes.
const (
	RedisStandalone = "standalone"
	RedisCluster    = "cluster"
	RedisSentinel   = "sentinel"
)

// validate checks the Redis settings' shape; where is its YAML path.
func (r Redis) validate(where string) error {
	switch r.Mode {
	case RedisStandalone:
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			return fmt.Errorf("%s.address %q: %v", where, r.Address, err)
		}
	case RedisCluster, RedisSentinel:
		if len(r.Addresses) == 0 {
			return fmt.Errorf("%s.addresses: mode %s needs at least one host:port", where, r.Mode)
		}
		for i, a := range r.Addresses {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("%s.addresses[%d] %q: %v", where, i, a, err)
			}
		}
	default:
		return fmt.Errorf("%s.mode %q: want standalone, cluster or sentinel", where, r.Mode)
	}
	if r.Mode == RedisSentinel && r.SentinelMaster == "" {
		return fmt.Errorf("%s.sentinel_master: mode sentinel needs the master set's name", where)
	}
	if r.Mode == RedisCluster && r.DB != 0 {
		return fmt.Errorf("%s.db %d: Redis Cluster has only database 0", where, r.DB)
	}
	if r.WaitReplicas < 0 {
		return fmt.Errorf("%s.wait_replicas %d: must not be negative", where, r.WaitReplicas)
	}
	if r.WaitTimeout < time.Millisecond {
		return fmt.Errorf("%s.wait_timeout %v: want at least 1ms", where, r.WaitTimeout)
	}
	return nil
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

// HTTPAuthz is the HTTP authorization listener for proxies that ask over
// HTTP: Envoy's http_service, nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth.
type HTTPAuthz struct {
	// Address is where it listens, e.g. 127.0.0.1:9193; empty: off.
	Address string `yaml:"address"`
	// PathPrefix is Envoy http_service's path_prefix, stripped from the path.
	PathPrefix string `yaml:"path_prefix"`
	// TrustedProxies are the CIDRs (or single addresses) whose X-Forwarded-*
	// and X-Original-* headers describe the original request. Absent: the
	// loopback addresses; an empty list trusts no peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS is the listener's own server TLS, shaped like grpc.tls;
	// client_ca_file makes proxies present a certificate.
	TLS TLS `yaml:"tls"`
}

// Enabled reports whether the HTTP authorization listener runs.
func (h HTTPAuthz) Enabled() bool { return h.Address != "" }

// DefaultTrustedProxies are http_authz.trusted_proxies when the file has none.
var DefaultTrustedProxies = []string{"127.0.0.1/32", "::1/128"}

// ResourceMetadata is RFC 9728 protected resource metadata for this API.
type ResourceMetadata struct {
	// Resource is the API's identifier (an https URL); tokens must carry it in aud.
	Resource string `yaml:"resource"`
	// AuthorizationServers are the issuer identifiers clients may get tokens
	// from (empty: every issuer's issuer).
	AuthorizationServers []string `yaml:"authorization_servers"`
	// ScopesSupported are the scopes the API understands.
	ScopesSupported []string `yaml:"scopes_supported"`
}

// Enabled reports whether the metadata is served and the audience required.
func (r ResourceMetadata) Enabled() bool { return r.Resource != "" }

// Default returns a configuration with every default set and no issuers.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

// Load reads, expands and validates the file at path. Relative paths the
// file gives (policies, certificates) are taken relative to the file.
func Load(path string) (*Config, error) {
	return LoadOver(path, &Config{})
}

// LoadOver reads the file at path over base: what the file sets replaces
// base's value, what it leaves out keeps it (tokenwise dev layers a user's
// file over its own defaults). Then defaults apply and the result is validated.
func LoadOver(path string, base *Config) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, dir, base)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse expands ${VAR} references in data, decodes it strictly and
// validates it. Relative paths are left as written.
func Parse(data []byte) (*Config, error) {
	return parse(data, "", &Config{})
}

func parse(data []byte, dir string, c *Config) (*Config, error) {
	var root yaml.Node
	var vars variables
	if err := yaml.Unmarshal([]byte(vars.hide(string(data))), &root); err != nil {
		return nil, plainYAMLError(err)
	}
	if root.Kind != 0 {
		if err := vars.expandNode(&root, ""); err != nil {
			return nil, err
		}
		if err := checkNode(&root, reflect.TypeFor[Config](), ""); err != nil {
			return nil, err
		}
		if err := root.Decode(c); err != nil {
			return nil, plainYAMLError(err)
		}
		c.set = &root
		if dir != "" {
			c.resolvePaths(&root, dir)
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Sets reports whether the file the configuration came from set the value
// at the YAML path keys, e.g. Sets("policy", "paths").
func (c *Config) Sets(keys ...string) bool {
	return c.set != nil && has(c.set, keys...)
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
		c.Policy.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.GRPC.MaxReceiveBytes == 0 {
		c.GRPC.MaxReceiveBytes = c.GRPC.ReceiveLimit(c.Policy.MaxBodyBytes)
	}
	if c.Policy.MaxBodyElements == 0 {
		c.Policy.MaxBodyElements = DefaultMaxBodyElements
	}
	if c.Policy.MaxBodyDepth == 0 {
		c.Policy.MaxBodyDepth = DefaultMaxBodyDepth
	}
	if c.Policy.Timeout == 0 {
		c.Policy.Timeout = DefaultPolicyTimeout
	}
	setDefault(&c.Tracing.ServiceName, "tokenwise")
	setDefault(&c.UseLimits.Store, "memory")
	setDefault(&c.UseLimits.OnStoreError, "deny")
	setDefault(&c.UseLimits.Redis.Address, "127.0.0.1:6379")
	setDefault(&c.UseLimits.Redis.KeyPrefix, "tokenwise:")
	setDefault(&c.UseLimits.Redis.Mode, RedisStandalone)
	if c.UseLimits.Redis.WaitTimeout == 0 {
		c.UseLimits.Redis.WaitTimeout = 100 * time.Millisecond
	}
	if c.UseLimits.MaxTTL == 0 {
		c.UseLimits.MaxTTL = 24 * time.Hour
	}
	for i := range c.Issuers {
		c.Issuers[i].applyDefaults()
		c.Issuers[i].Introspection.applyDefaults()
	}
	if c.HTTPAuthz.TrustedProxies == nil {
		c.HTTPAuthz.TrustedProxies = slices.Clone(DefaultTrustedProxies)
	}
}

// applyDefaults fills introspection's defaults; nil stays nil.
func (in *Introspection) applyDefaults() {
	if in == nil {
		return
	}
	setDefault(&in.Auth, AuthClientSecretBasic)
	if in.CacheTTL == 0 {
		in.CacheTTL = 2 * time.Minute
	}
	if in.NegativeCacheTTL == 0 {
		in.NegativeCacheTTL = 10 * time.Second
	}
	if in.Timeout == 0 {
		in.Timeout = 2 * time.Second
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
	i.applyPoPDefaults()
}

func (i *Issuer) applyPoPDefaults() {
	setDefault(&i.ProofOfPossession, ProofOptional)
	if i.DPoPProofLifetime == 0 {
		i.DPoPProofLifetime = DefaultDPoPProofLifetime
	}
	if len(i.DPoPAlgorithms) == 0 {
		i.DPoPAlgorithms = slices.Clone(DefaultDPoPAlgorithms)
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
	if !slices.Contains([]string{"", "json", "text"}, c.Log.Format) {
		return fmt.Errorf("log.format %q: want text or json", c.Log.Format)
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
	if c.Policy.MaxBodyElements < 0 || c.Policy.MaxBodyDepth < 0 || c.Policy.MaxBodyParses < 0 || c.Policy.Timeout < 0 {
		return errors.New("policy: max_body_elements, max_body_depth, max_body_parses and timeout must not be negative")
	}
	if c.GRPC.MaxReceiveBytes < 0 {
		return errors.New("grpc.max_receive_bytes must not be negative")
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
	if c.UseLimits.Store == "redis" {
		if err := c.UseLimits.Redis.validate("use_limits.redis"); err != nil {
			return err
		}
	}
	if err := c.HTTPAuthz.validate(); err != nil {
		return err
	}
	if err := c.ResourceMetadata.validate(); err != nil {
		return err
	}
	if c.RateLimits.Timeout < 0 || c.RateLimits.MaxKeys < 0 {
		return errors.New("rate_limits.timeout and rate_limits.max_keys must not be negative")
	}
	for claim, header := range c.Forward.ClaimsToHeaders {
		if claim == "" || header == "" || header != strings.ToLower(header) || strings.HasPrefix(header, ":") {
			return fmt.Errorf("forward.claims_to_headers %q: %q: want a claim and a lowercase header name", claim, header)
		}
		// The rule a policy's headers follow: refused here, a bad name would
		// otherwise fail or misroute every request that carries the claim.
		if err := headername.Check(header); err != nil {
			return fmt.Errorf("forward.claims_to_headers %q: %w", claim, err)
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
		where = fmt.Sprintf("%s (%s)", where, is.Name)
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
		if err := is.validateIntrospection(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := c.validatePoP(is); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return validatePrefixes(c.Issuers)
}

// validatePoP checks an issuer's proof-of-possession settings.
func (c *Config) validatePoP(is Issuer) error {
	// "" is optional too: a configuration built in code has no defaults applied.
	if !slices.Contains([]string{"", ProofOptional, ProofRequired}, is.ProofOfPossession) {
		return fmt.Errorf("proof_of_possession %q: want optional or required", is.ProofOfPossession)
	}
	if is.DPoPProofLifetime < 0 {
		return errors.New("dpop_proof_lifetime must not be negative")
	}
	for _, alg := range is.DPoPAlgorithms {
		if !slices.Contains(DefaultAlgorithms, alg) {
			return fmt.Errorf("dpop_algorithms: %q not allowed (want asymmetric: %s)", alg, strings.Join(DefaultAlgorithms, " "))
		}
	}
	if is.DPoPNonce && len(c.DPoP.NonceSecret) < minNonceSecret {
		return fmt.Errorf("dpop_nonce needs dpop.nonce_secret, at least %d characters shared by every replica", minNonceSecret)
	}
	if c.DPoP.NonceLifetime < 0 {
		return errors.New("dpop.nonce_lifetime must not be negative")
	}
	return nil
}

// validateIntrospection checks an issuer's introspection block, if any.
func (i Issuer) validateIntrospection() error {
	in := i.Introspection
	if in == nil {
		return nil
	}
	if in.URL != "" {
		if err := CheckIntrospectionURL(in.URL); err != nil {
			return fmt.Errorf("introspection.url %q: %v", in.URL, err)
		}
	} else if doc := i.DiscoveryDocument(); CheckIntrospectionURL(doc) != nil {
		return fmt.Errorf("introspection.url is required: the issuer gives no usable discovery URL (%q)", doc)
	}
	switch in.Auth {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if in.ClientID == "" || in.ClientSecret == "" {
			return fmt.Errorf("introspection.auth %s needs client_id and client_secret", in.Auth)
		}
	case AuthBearer:
		if in.ClientSecret == "" {
			return errors.New("introspection.auth bearer needs client_secret (sent as the bearer token)")
		}
	case AuthNone:
	default:
		return fmt.Errorf("introspection.auth %q: want client_secret_basic, client_secret_post, bearer or none", in.Auth)
	}
	if in.CacheTTL < 0 || in.NegativeCacheTTL < 0 || in.Timeout < 0 {
		return errors.New("introspection: durations must not be negative")
	}
	return nil
}

// validatePrefixes makes opaque-token routing unambiguous: no two
// introspecting issuers share a token_prefix, and at most one has none.
func validatePrefixes(issuers []Issuer) error {
	seen := map[string]string{}
	for _, is := range issuers {
		if is.Introspection == nil {
			continue
		}
		p := is.Introspection.TokenPrefix
		if other, dup := seen[p]; dup {
			if p == "" {
				return fmt.Errorf("issuers %q and %q both introspect without a token_prefix: at most one may", other, is.Name)
			}
			return fmt.Errorf("issuers %q and %q have the same introspection.token_prefix %q", other, is.Name, p)
		}
		seen[p] = is.Name
	}
	return nil
}

// validateKeyURLs checks where the issuer's keys come from: jwks_url, or
// else the discovery document (discovery_url or the issuer's well-known URL),
// which must meet the same https rule because it names the keys' URL.
func (i Issuer) validateKeyURLs() error {
	if !i.HasKeys() {
		return nil // introspection only
	}
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

func (h HTTPAuthz) validate() error {
	if h.Address != "" {
		if _, _, err := net.SplitHostPort(h.Address); err != nil {
			return fmt.Errorf("http_authz.address %q: %v", h.Address, err)
		}
	}
	if h.PathPrefix != "" && !strings.HasPrefix(h.PathPrefix, "/") {
		return fmt.Errorf("http_authz.path_prefix %q: must start with /", h.PathPrefix)
	}
	for i, p := range h.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			return fmt.Errorf("http_authz.trusted_proxies[%d] %q: want a CIDR such as 10.0.0.0/8 or an address", i, p)
		}
	}
	if (h.TLS.CertFile == "") != (h.TLS.KeyFile == "") {
		return errors.New("http_authz.tls: cert_file and key_file must be set together")
	}
	if h.TLS.ClientCAFile != "" && !h.TLS.Enabled() {
		return errors.New("http_authz.tls.client_ca_file needs cert_file and key_file")
	}
	return nil
}

// ParsePrefix reads one trusted_proxies entry: a CIDR, or a single address
// (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// validate checks the resource identifier as RFC 9728 §1.2 and RFC 8707 §2
// want it: an absolute https URL (http only on a loopback host, for local
// development) with no fragment; tokenwise also refuses a query, which would
// make the metadata URL ambiguous.
func (r ResourceMetadata) validate() error {
	if r.Resource == "" {
		if len(r.AuthorizationServers) > 0 || len(r.ScopesSupported) > 0 {
			return errors.New("resource_metadata: resource is required")
		}
		return nil
	}
	u, err := url.Parse(r.Resource)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("resource_metadata.resource %q: not an absolute URL", r.Resource)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Errorf("resource_metadata.resource %q: must be https (http only for a loopback host)", r.Resource)
	case u.Fragment != "" || strings.Contains(r.Resource, "#"):
		return fmt.Errorf("resource_metadata.resource %q: must not have a fragment", r.Resource)
	case u.RawQuery != "" || strings.Contains(r.Resource, "?"):
		return fmt.Errorf("resource_metadata.resource %q: must not have a query", r.Resource)
	case u.User != nil:
		return fmt.Errorf("resource_metadata.resource %q: must not carry user information", r.Resource)
	}
	for i, as := range r.AuthorizationServers {
		if u, err := url.Parse(as); err != nil || u.Host == "" {
			return fmt.Errorf("resource_metadata.authorization_servers[%d] %q: not an absolute URL", i, as)
		}
	}
	return nil
}
