package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/revoke"
	"github.com/tokenwise/tokenwise/authz/uselimit"
	"github.com/tokenwise/tokenwise/authz/verify"
	tokenwisev1 "github.com/tokenwise/tokenwise/proto/tokenwise/v1"
)

// adminCallTimeout bounds one admin call's store work when the caller set no deadline.
const adminCallTimeout = 5 * time.Second

// admin serves tokenwise.v1.TokenAdmin. Every method runs behind guard,
// which only lets callers with the admin credential through.
type admin struct {
	tokenwisev1.UnimplementedTokenAdminServer

	guard   *adminGuard
	revoked *revoke.Set
	limits  uselimit.Store
	issuers map[string]config.Issuer
	maxTTL  time.Duration
	logger  *slog.Logger
	// clientCAPEM is admin.client_ca_file's content, added to the TLS
	// listener's client CAs so the handshake accepts admin certificates.
	clientCAPEM []byte
}

// newAdmin returns the TokenAdmin service for cfg, or nil when no admin
// credential is configured: then the API is off and calls are UNIMPLEMENTED.
func newAdmin(cfg *config.Config, revoked *revoke.Set, limits uselimit.Store, logger *slog.Logger) (*admin, error) {
	a := &admin{guard: &adminGuard{}, revoked: revoked, limits: limits, issuers: map[string]config.Issuer{},
		maxTTL: cfg.UseLimits.MaxTTL, logger: logger}
	if cfg.Admin.Token == "" && cfg.Admin.ClientCAFile == "" {
		return nil, nil
	}
	if cfg.Admin.Token != "" {
		a.guard.token = sha256.Sum256([]byte(cfg.Admin.Token))
		a.guard.hasToken = true
	}
	if cfg.Admin.ClientCAFile != "" {
		if !cfg.GRPC.TLS.Enabled() {
			return nil, errors.New("admin.client_ca_file needs grpc.tls cert_file and key_file: client certificates need TLS")
		}
		pem, err := os.ReadFile(cfg.Admin.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("admin.client_ca_file: %w", err)
		}
		a.guard.roots = x509.NewCertPool()
		if !a.guard.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin.client_ca_file %s: no PEM certificates", cfg.Admin.ClientCAFile)
		}
		a.clientCAPEM = pem
	}
	for _, is := range cfg.Issuers {
		a.issuers[is.Name] = is
	}
	return a, nil
}

// serverOptions makes the TLS listener ask for client certificates signed by
// admin.client_ca_file (optional for callers, unless grpc.tls.client_ca_file
// already requires a certificate). The handshake then accepts either CA, so
// guard checks an admin certificate against the admin CA alone. The option
// replaces the credentials GRPCServerOptions set, as grpc-go keeps the last.
func (a *admin) serverOptions(c config.TLS) ([]grpc.ServerOption, error) {
	if a == nil || a.clientCAPEM == nil {
		return nil, nil
	}
	tc, err := serverTLS(c)
	if err != nil {
		return nil, err
	}
	if tc.ClientCAs == nil {
		tc.ClientCAs = x509.NewCertPool()
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	tc.ClientCAs.AppendCertsFromPEM(a.clientCAPEM)
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc))}, nil
}

// register serves the service on g, each method wrapped by the guard. The
// guard is part of this service's handlers rather than a server-wide
// interceptor, so Checks never pay for it; it runs before the request is decoded.
func (a *admin) register(g *grpc.Server) {
	if a == nil {
		return
	}
	desc := tokenwisev1.TokenAdmin_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i, m := range desc.Methods {
		inner, method := m.Handler, "/"+desc.ServiceName+"/"+m.MethodName
		desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			caller, err := a.guard.authenticate(ctx)
			if err != nil {
				// The status message quotes the expected metadata; the
				// code says enough in the log.
				a.logger.Warn("admin call refused", "method", method, "peer", peerAddr(ctx), "code", status.Code(err).String())
				return nil, err
			}
			return inner(srv, context.WithValue(ctx, callerKey{}, caller), dec, ic)
		}
	}
	g.RegisterService(&desc, a)
}

// adminGuard holds the admin credentials: a hash of admin.token (so
// comparisons take the same time whatever the lengths) and the admin CA.
type adminGuard struct {
	token    [sha256.Size]byte
	hasToken bool
	roots    *x509.CertPool
}

// callerKey carries the authenticated caller ("token" or "cert:<subject>") in a context.
type callerKey struct{}

// authenticate returns who the caller is, UNAUTHENTICATED when it presents
// no credential, and PERMISSION_DENIED when the credential it presents is
// not the admin credential. A bearer token, when sent, decides alone.
func (g *adminGuard) authenticate(ctx context.Context) (string, error) {
	if values := metadata.ValueFromIncomingContext(ctx, "authorization"); len(values) > 0 {
		return g.checkToken(values)
	}
	if leaf, chain := peerCertificates(ctx); leaf != nil {
		return g.checkCert(leaf, chain)
	}
	return "", status.Error(codes.Unauthenticated, "the admin API needs a credential: authorization: Bearer <admin token>, or an admin client certificate")
}

func (g *adminGuard) checkToken(values []string) (string, error) {
	scheme, token, ok := strings.Cut(values[0], " ")
	if len(values) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", status.Error(codes.Unauthenticated, "authorization metadata: want one \"Bearer <admin token>\"")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if !g.hasToken || subtle.ConstantTimeCompare(sum[:], g.token[:]) != 1 {
		return "", status.Error(codes.PermissionDenied, "the admin token is not valid")
	}
	return "token", nil
}

func (g *adminGuard) checkCert(leaf *x509.Certificate, chain []*x509.Certificate) (string, error) {
	if g.roots == nil {
		return "", status.Error(codes.PermissionDenied, "client certificates are not admin credentials here (admin.client_ca_file is not set)")
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain {
		intermediates.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: g.roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return "", status.Error(codes.PermissionDenied, "the client certificate is not signed by the admin CA")
	}
	return "cert:" + leaf.Subject.String(), nil
}

// peerCertificates returns the caller's TLS certificate and the rest of its
// chain, which the handshake has verified against the listener's client CAs.
func peerCertificates(ctx context.Context) (*x509.Certificate, []*x509.Certificate) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, nil
	}
	return info.State.PeerCertificates[0], info.State.PeerCertificates[1:]
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// audit logs one admin call that went through: who, what, and the outcome.
func (a *admin) audit(ctx context.Context, method string, err error, attrs ...any) {
	caller, _ := ctx.Value(callerKey{}).(string)
	attrs = append([]any{"method", method, "caller", caller, "peer", peerAddr(ctx)}, attrs...)
	if err != nil {
		a.logger.Warn("admin call failed", append(attrs, "code", status.Code(err).String(), "error", err.Error())...)
		return
	}
	a.logger.Info("admin call", attrs...)
}

// RevokeToken revokes one token by issuer name and jti.
func (a *admin) RevokeToken(ctx context.Context, req *tokenwisev1.RevokeTokenRequest) (resp *tokenwisev1.RevokeTokenResponse, err error) {
	defer func() { a.audit(ctx, "RevokeToken", err, "issuer", req.GetIssuer(), "jti", req.GetJti()) }()
	is, err := a.issuer(req.GetIssuer())
	if err != nil {
		return nil, err
	}
	if req.GetJti() == "" {
		return nil, status.Error(codes.InvalidArgument, "jti is required")
	}
	until, err := a.until(req.GetUntil(), time.Now(), is)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	rev, err := a.revoked.RevokeToken(ctx, is.Name, req.GetJti(), until)
	if err != nil {
		return nil, storeError(err)
	}
	return &tokenwisev1.RevokeTokenResponse{Revocation: toProto(rev)}, nil
}

// RevokeSubject revokes a subject's tokens issued before a cut-off.
func (a *admin) RevokeSubject(ctx context.Context, req *tokenwisev1.RevokeSubjectRequest) (resp *tokenwisev1.RevokeSubjectResponse, err error) {
	defer func() { a.audit(ctx, "RevokeSubject", err, "issuer", req.GetIssuer(), "subject", req.GetSubject()) }()
	is, err := a.issuer(req.GetIssuer())
	if err != nil {
		return nil, err
	}
	if req.GetSubject() == "" {
		return nil, status.Error(codes.InvalidArgument, "subject is required")
	}
	now := time.Now()
	before := now
	if req.IssuedBefore != nil {
		if err := req.GetIssuedBefore().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "issued_before: %v", err)
		}
		before = req.GetIssuedBefore().AsTime()
	}
	// Tokens issued before the cut-off expire by then plus their lifetime.
	until, err := a.until(req.GetUntil(), later(before, now), is)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	rev, err := a.revoked.RevokeSubject(ctx, is.Name, req.GetSubject(), before, until)
	if err != nil {
		return nil, storeError(err)
	}
	return &tokenwisev1.RevokeSubjectResponse{Revocation: toProto(rev)}, nil
}

// GetTokenUses reads a token's use count from the use-limit store.
func (a *admin) GetTokenUses(ctx context.Context, req *tokenwisev1.GetTokenUsesRequest) (resp *tokenwisev1.GetTokenUsesResponse, err error) {
	defer func() { a.audit(ctx, "GetTokenUses", err, "issuer", req.GetIssuer(), "jti", req.GetJti()) }()
	is, err := a.issuer(req.GetIssuer())
	if err != nil {
		return nil, err
	}
	if req.GetJti() == "" {
		return nil, status.Error(codes.InvalidArgument, "jti is required")
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	// The same key the Check pipeline counts under.
	uses, err := a.limits.Uses(ctx, uselimit.Key(&verify.Token{Issuer: is.Name, ID: req.GetJti()}))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "use-limit store: %v", err)
	}
	resp = &tokenwisev1.GetTokenUsesResponse{Uses: uses}
	if rev, ok := a.revoked.Lookup(revoke.TokenID(is.Name, req.GetJti())); ok {
		resp.Revocation = toProto(rev)
	}
	return resp, nil
}

// ListRevocations lists the revocations in force, optionally of one issuer.
func (a *admin) ListRevocations(ctx context.Context, req *tokenwisev1.ListRevocationsRequest) (resp *tokenwisev1.ListRevocationsResponse, err error) {
	defer func() { a.audit(ctx, "ListRevocations", err, "issuer", req.GetIssuer()) }()
	if req.GetIssuer() != "" {
		if _, err := a.issuer(req.GetIssuer()); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	all, err := a.revoked.List(ctx)
	if err != nil {
		return nil, storeError(err)
	}
	resp = &tokenwisev1.ListRevocationsResponse{}
	for _, rev := range all {
		if req.GetIssuer() == "" || rev.Issuer == req.GetIssuer() {
			resp.Revocations = append(resp.Revocations, toProto(rev))
		}
	}
	return resp, nil
}

// RemoveRevocation lifts one revocation by id.
func (a *admin) RemoveRevocation(ctx context.Context, req *tokenwisev1.RemoveRevocationRequest) (resp *tokenwisev1.RemoveRevocationResponse, err error) {
	defer func() { a.audit(ctx, "RemoveRevocation", err, "id", req.GetId()) }()
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	found, err := a.revoked.Remove(ctx, req.GetId())
	if err != nil {
		return nil, storeError(err)
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "no revocation %q", req.GetId())
	}
	return &tokenwisev1.RemoveRevocationResponse{}, nil
}

// issuer finds a configured issuer by name.
func (a *admin) issuer(name string) (config.Issuer, error) {
	is, ok := a.issuers[name]
	if !ok {
		return config.Issuer{}, status.Errorf(codes.InvalidArgument, "unknown issuer %q: want a configured issuers[].name", name)
	}
	return is, nil
}

// until is the requested end of a revocation, or by default from plus the
// longest life a token of is can have left: max_lifetime (and leeway) when
// the issuer bounds lifetimes, else use_limits.max_ttl. The token is not at
// hand, so its own exp cannot be used.
func (a *admin) until(requested *timestamppb.Timestamp, from time.Time, is config.Issuer) (time.Time, error) {
	if requested != nil {
		if err := requested.CheckValid(); err != nil {
			return time.Time{}, status.Errorf(codes.InvalidArgument, "until: %v", err)
		}
		return requested.AsTime(), nil
	}
	lifetime := a.maxTTL
	if is.MaxLifetime > 0 {
		lifetime = is.MaxLifetime
	}
	return from.Add(lifetime + is.Leeway), nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// storeError maps a revocation-set error to a gRPC status.
func storeError(err error) error {
	if errors.Is(err, revoke.ErrInvalid) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Errorf(codes.Unavailable, "revocation store: %v", err)
}

func toProto(r revoke.Revocation) *tokenwisev1.Revocation {
	p := &tokenwisev1.Revocation{Id: r.ID, Issuer: r.Issuer, Jti: r.JTI, Subject: r.Subject,
		Until: timestamppb.New(r.Until), Created: timestamppb.New(r.Created)}
	switch r.Kind {
	case revoke.KindToken:
		p.Kind = tokenwisev1.Revocation_KIND_TOKEN
	case revoke.KindSubject:
		p.Kind = tokenwisev1.Revocation_KIND_SUBJECT
		p.IssuedBefore = timestamppb.New(r.IssuedBefore)
	}
	return p
}
