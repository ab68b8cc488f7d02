// Package verify checks bearer tokens: it picks the configured
// issuer by the token's iss, verifies the signature with that issuer's JWKS
// keys only (keyfunc/v3 over golang-jwt/v5), and validates the claims: alg
// allowlist, exact iss, aud any-of, exp/nbf/iat with leeway, max_lifetime and
// typ. Each issuer's JWKS loads and refreshes in the background, so nothing
// here blocks a request on the network for longer than the request allows.
//
// A token that is not a JWT (see isJWT) is opaque: it goes to the
// introspecting issuer whose token_prefix it starts with, else to the one
// without a prefix, which asks its RFC 7662 endpoint (authz/introspect); the
// answer then meets the same claim rules as a JWT's claims.
package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/introspect"
	"github.com/tokenwise/tokenwise/authz/observe"
)

// MaxTokenBytes is the default cap on the compact token; a bigger one is
// refused before any decoding.
const MaxTokenBytes = 16 << 10

// Options are the Verifier's collaborators; every field may be left zero.
type Options struct {
	// Metrics counts JWKS fetches; nil records nothing.
	Metrics *observe.Metrics
	// Logger receives JWKS load and failure messages; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches JWKS; nil uses a client with connect, TLS and header timeouts.
	HTTPClient *http.Client
	// MaxTokenBytes caps the compact token, checked before any decoding;
	// zero or less means the default, MaxTokenBytes.
	MaxTokenBytes int
	// CacheSize is how many verified tokens to remember (0: DefaultCacheSize;
	// negative: none, every Check verifies its token afresh). It bounds each
	// issuer's introspection answer cache too.
	CacheSize int
	// IntrospectionClient sends introspection requests; nil uses the
	// introspect package's default. Its redirect policy is always replaced.
	IntrospectionClient *http.Client
}

// Verifier verifies tokens against the configured issuers. It is safe for concurrent use.
type Verifier struct {
	byIssuer map[string]*issuer
	all      []*issuer
	// prefixed are the introspecting issuers with a token_prefix, longest
	// prefix first; unprefixed is the one without, if any.
	prefixed   []*issuer
	unprefixed *issuer
	maxBytes   int
	cache      *cache
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
}

// issuer is one configured issuer with its parser and keys.
type issuer struct {
	cfg       config.Issuer
	algs      map[string]bool
	validator *jwt.Validator
	keys      *keySource // nil when the issuer only introspects
	// introspect and answers check opaque tokens; nil without introspection.
	introspect *introspect.Client
	answers    *jwt.Validator
}

// New starts background JWKS loading for every issuer; it never blocks on the network.
func New(issuers []config.Issuer, opts Options) (*Verifier, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = defaultHTTPClient()
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &Verifier{byIssuer: map[string]*issuer{}, cancel: cancel, maxBytes: opts.MaxTokenBytes}
	if v.maxBytes <= 0 {
		v.maxBytes = MaxTokenBytes
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newCache(opts.CacheSize)
	}
	for _, cfg := range issuers {
		is, err := v.newIssuer(ctx, withDefaults(cfg), client, opts, log)
		if err != nil {
			cancel()
			return nil, err
		}
		v.byIssuer[cfg.Issuer] = is
		v.all = append(v.all, is)
		if err := v.route(is); err != nil {
			cancel()
			return nil, err
		}
	}
	for _, is := range v.all {
		if is.keys != nil {
			v.wg.Add(1)
			go is.keys.run()
		}
	}
	return v, nil
}

// withDefaults fills the zero values that config.Load would have defaulted,
// for callers (dev mode, tests) that build an Issuer by hand. A zero Leeway
// stays zero: it is a meaningful value.
func withDefaults(cfg config.Issuer) config.Issuer {
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = slices.Clone(config.DefaultAlgorithms)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 10 * time.Second
	}
	return cfg
}

func (v *Verifier) newIssuer(ctx context.Context, cfg config.Issuer, client *http.Client, opts Options, log *slog.Logger) (*issuer, error) {
	m := opts.Metrics
	where := fmt.Sprintf("verify: issuer %q", cfg.Name)
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%s: issuer is required", where)
	}
	if _, dup := v.byIssuer[cfg.Issuer]; dup {
		return nil, fmt.Errorf("%s: issuer %q configured twice", where, cfg.Issuer)
	}
	// Discovery and JWKS redirects pass the configured URLs' rule.
	client = withRedirectRule(client, cfg.AllowInsecureJWKSURL)
	if !cfg.HasKeys() {
		in, err := newIntrospector(cfg, newDiscovery(cfg, client), opts, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return &issuer{cfg: cfg, validator: newValidator(cfg), introspect: in, answers: newAnswerValidator(cfg)}, nil
	}
	if err := checkKeyURL(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	algs := map[string]bool{}
	for _, alg := range cfg.Algorithms {
		// Defence in depth: config validation already refuses these, but
		// HMAC or none here would let a public key act as a shared secret.
		if !slices.Contains(config.DefaultAlgorithms, alg) {
			return nil, fmt.Errorf("%s: algorithm %q is not an allowed asymmetric algorithm", where, alg)
		}
		algs[alg] = true
	}
	store := jwkset.NewMemoryStorage()
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: store})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	disc := newDiscovery(cfg, client)
	keys := &keySource{
		name: cfg.Name, url: cfg.JWKSURL, algs: cfg.Algorithms, client: client,
		fetchTimeout: cfg.FetchTimeout, refreshInterval: cfg.RefreshInterval, minRefresh: cfg.MinRefreshInterval,
		metrics: m, log: log, now: time.Now, ctx: ctx, wg: &v.wg, store: store, kf: kf,
	}
	if cfg.DiscoveryEndpoint() != "" {
		keys.disc = disc // the keys' URL is discovered, not configured
	}
	is := &issuer{cfg: cfg, algs: algs, validator: newValidator(cfg), keys: keys}
	if cfg.Introspection != nil {
		if is.introspect, err = newIntrospector(cfg, disc, opts, log); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		is.answers = newAnswerValidator(cfg)
	}
	return is, nil
}

// newValidator gives golang-jwt the claim rules it enforces itself. Parsing,
// strict base64 (one spelling per token, which the use-limit key ContentHash
// relies on) and the signature are tokenwise's own (split, checkSignature),
// so the same code serves tokens whose payload is not a claim set.
func newValidator(cfg config.Issuer) *jwt.Validator {
	return jwt.NewValidator(append([]jwt.ParserOption{jwt.WithIssuer(cfg.Issuer)}, claimRules(cfg)...)...)
}

// claimRules are the rules for exp, nbf, iat and aud that JWTs and
// introspection answers share.
func claimRules(cfg config.Issuer) []jwt.ParserOption {
	opts := []jwt.ParserOption{
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...)) // any of them
	}
	if cfg.ExpirationRequired() {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	return opts
}

// defaultHTTPClient bounds every phase of a JWKS fetch. Redirects are
// checked per issuer (withRedirectRule).
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: time.Minute, // a backstop; each fetch has its own FetchTimeout
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
	}
}

// MaxRedirects is how many redirects a JWKS or discovery fetch follows.
const MaxRedirects = 3

// withRedirectRule returns a copy of client (sharing its transport) whose
// redirects must pass the rule the configured URL passed: https, or http
// only to a loopback host or with allow_insecure_jwks_url. Otherwise a
// loopback JWKS could redirect to any plain-http host, and its keys would be
// trusted. At most MaxRedirects are followed.
func withRedirectRule(client *http.Client, allowInsecure bool) *http.Client {
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return fmt.Errorf("more than %d redirects", MaxRedirects)
		}
		if err := config.CheckJWKSURL(req.URL.String(), allowInsecure); err != nil {
			return fmt.Errorf("redirect to %s refused: %v", req.URL.Redacted(), err)
		}
		return nil
	}
	return &c
}

// Ready reports whether every issuer's JWKS has loaded at least once. An
// introspection endpoint is not waited for: it is asked per token, and an
// issuer that only introspects has no JWKS.
func (v *Verifier) Ready() bool {
	for _, is := range v.all {
		if is.keys != nil && !is.keys.loaded.Load() {
			return false
		}
	}
	return true
}

// Close stops background refreshes and waits for running fetches to end.
func (v *Verifier) Close() {
	v.once.Do(func() {
		v.cancel()
		v.wg.Wait()
	})
}

// Verify checks raw (the compact JWS, without "Bearer ") and returns the
// verified token or a *Error. ctx carries the Check's deadline: a key refresh
// for an unknown kid is waited for no longer than that.
//
// The stages run cheapest and least trusting first: size and shape, header
// rules, the signature, then the claims.
//
// A token verified before is answered from the cache while it is valid and
// its issuer's key set has not changed. The Token returned may be shared with
// other Checks: it is read-only.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	now := time.Now()
	if tok := v.cache.get(raw, now); tok != nil {
		return tok, nil
	}
	if len(raw) > v.maxBytes {
		return nil, newError(ReasonMalformed, "token is too large")
	}
	if !isJWT(raw) {
		return v.verifyOpaque(ctx, raw)
	}
	c, err := split(raw, v.maxBytes)
	if err != nil {
		return nil, err
	}
	claims, err := decodeClaims(c.payload)
	if err != nil {
		return nil, err
	}
	is, err := v.issuerOf(claims)
	if err != nil {
		return nil, err
	}
	if is.keys == nil {
		return nil, newError(ReasonNoKeys, "token issuer accepts only opaque tokens, checked by introspection")
	}
	if err := is.checkHeader(c.header); err != nil {
		return nil, err
	}
	// Read before the signature check: if the keys change meanwhile, the
	// cached entry is stale from the start, never trusted past the change.
	generation := is.keys.generation.Load()
	if err := is.checkSignature(ctx, c); err != nil {
		return nil, err
	}
	if verr := is.validator.Validate(claims); verr != nil {
		return nil, fromJWT(verr, claims, is.cfg.ExpirationRequired())
	}
	tok, terr := is.token(c.header, claims, sha256.Sum256([]byte(c.signed)))
	if terr != nil {
		return nil, terr
	}
	v.cache.put(raw, tok, is.keys, generation, now)
	return tok, nil
}

// issuerOf chooses the issuer by the (still untrusted) iss claim; that
// issuer's keys and rules then decide.
func (v *Verifier) issuerOf(claims jwt.MapClaims) (*issuer, *Error) {
	switch iss := claims["iss"].(type) {
	case string:
		if is, ok := v.byIssuer[iss]; ok {
			return is, nil
		}
		e := newError(ReasonUnknownIssuer, "unknown issuer")
		// Named in the log so a near miss (a trailing slash) is visible.
		e.Detail = "iss " + QuoteCut(iss, maxDetailIssuer)
		return nil, e
	case nil:
		return nil, newError(ReasonUnknownIssuer, "token has no issuer")
	}
	return nil, newError(ReasonMalformed, "token issuer is not a string")
}

// maxDetailIssuer is how much of an unknown iss the log shows.
const maxDetailIssuer = 100

// QuoteCut quotes s for a log line, ASCII-only with Go escapes, after
// cutting it to at most n bytes on a character boundary ("…" marks a cut).
func QuoteCut(s string, n int) string {
	if len(s) <= n {
		return strconv.QuoteToASCII(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.QuoteToASCII(s[:cut]) + "…"
}

// checkSignature verifies c's signature with this issuer's key for it: the
// kid's key, or each key that fits alg for a token without kid.
func (is *issuer) checkSignature(ctx context.Context, c *compact) *Error {
	alg, _ := c.header["alg"].(string)
	method := signingMethod(alg)
	if method == nil {
		return newError(ReasonAlgNotAllowed, "token algorithm is not allowed")
	}
	key, err := is.keys.key(ctx, &jwt.Token{Header: c.header, Method: method})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return newError(ReasonUnknownKID, "token signing key is unknown")
	}
	candidates := []jwt.VerificationKey{key}
	if set, ok := key.(jwt.VerificationKeySet); ok {
		candidates = set.Keys
	}
	for _, k := range candidates {
		if keyMatchesAlg(k, alg) && method.Verify(c.signed, c.sig, k) == nil {
			return nil
		}
	}
	return newError(ReasonBadSignature, "signature is invalid")
}

// checkHeader applies the header rules golang-jwt does not: a precise answer
// for alg, no crit, and the issuer's typ.
func (is *issuer) checkHeader(hdr map[string]any) *Error {
	alg, _ := hdr["alg"].(string)
	switch {
	case alg == "":
		return newError(ReasonMalformed, "token has no algorithm")
	case strings.EqualFold(alg, "none"):
		return newError(ReasonAlgNotAllowed, "token algorithm none is not allowed")
	case !is.algs[alg]:
		return newError(ReasonAlgNotAllowed, "token algorithm is not allowed")
	}
	// RFC 7515 §4.1.11: a recipient must reject crit parameters it does not
	// understand, and tokenwise understands none.
	if _, ok := hdr["crit"]; ok {
		return newError(ReasonCrit, "token has critical header parameters that are not supported")
	}
	if err := checkB64(hdr); err != nil {
		return err
	}
	if is.cfg.Typ != "" {
		typ, _ := hdr["typ"].(string)
		if mediaType(typ) != mediaType(is.cfg.Typ) {
			return newError(ReasonTyp, "token type is not accepted")
		}
	}
	return nil
}

// mediaType normalises a typ value: RFC 7515 §4.1.9 compares media types
// case-insensitively, and "application/" may be left out.
func mediaType(typ string) string {
	t := strings.ToLower(typ)
	return strings.TrimPrefix(t, "application/")
}
