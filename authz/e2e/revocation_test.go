package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/server"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
	tokenwisev1 "github.com/tokenwise/tokenwise/proto/tokenwise/v1"
)

const adminToken = "s3cret-admin-token-for-tests"

// propagation bounds the wait for a revocation to reach another replica.
// The design target is under a second (pub/sub, then a reload); the bound is
// wider so a loaded CI machine does not fail the test, and each test logs
// how long it took.
const propagation = 5 * time.Second

func withAdminToken(c *config.Config) { c.Admin.Token = adminToken }

// adminClient is a TokenAdmin client for h's listener over plain gRPC.
func (h *harness) adminClient() tokenwisev1.TokenAdminClient {
	h.t.Helper()
	conn, err := grpc.NewClient(h.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return tokenwisev1.NewTokenAdminClient(conn)
}

// asAdmin is a context carrying token as the admin credential.
func asAdmin(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// ordersToken mints a token the policy allows on /orders.
func (h *harness) ordersToken(claims map[string]any) string {
	all := map[string]any{"aud": "orders-api", "scope": "orders:read"}
	for k, v := range claims {
		all[k] = v
	}
	return h.issuer.Mint(all)
}

// allowed reports whether replica h lets token GET /orders/1.
func allowed(h *harness, token string) bool {
	return read(h.check(envoyRequest("GET", "/orders/1", bearer(token)))).allowed
}

// refusedAsRevoked fails the test unless h answers token with 401 "token has been revoked".
func refusedAsRevoked(t *testing.T, h *harness, token string) {
	t.Helper()
	resp := h.check(envoyRequest("GET", "/orders/1", bearer(token)))
	a := read(resp)
	if a.allowed || a.status != 401 || !strings.Contains(a.headers["www-authenticate"], `error="invalid_token"`) ||
		!strings.Contains(a.body, "token has been revoked") {
		t.Fatalf("want 401 invalid_token \"token has been revoked\", got %+v", a)
	}
}

// waitRefused polls every replica until each refuses token, within propagation.
func waitRefused(t *testing.T, f fleet, token string) {
	t.Helper()
	start := time.Now()
	for _, h := range f {
		eventually(t, propagation, func() bool { return !allowed(h, token) })
		refusedAsRevoked(t, h, token)
	}
	t.Logf("refused on %d replicas %v after the revocation", len(f), time.Since(start))
}

func TestRevocationReachesEveryReplicaThroughRedis(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleet(t, 2, func(c *config.Config) { redisStore(redis.Addr())(c); withAdminToken(c) })
	revoked := f[0].ordersToken(map[string]any{"sub": "alice", "jti": "leaked-1"})
	other := f[0].ordersToken(map[string]any{"sub": "alice", "jti": "fine-1"})
	for _, h := range f {
		if !allowed(h, revoked) || !allowed(h, other) {
			t.Fatal("tokens refused before any revocation")
		}
	}

	resp, err := f[0].adminClient().RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "leaked-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetRevocation(); r.GetId() != "token:corp:leaked-1" || r.GetKind() != tokenwisev1.Revocation_KIND_TOKEN ||
		!r.GetUntil().AsTime().After(time.Now().Add(23*time.Hour)) {
		t.Fatalf("revocation %v: want id token:corp:leaked-1 until about now + max_ttl", r)
	}
	refusedAsRevoked(t, f[0], revoked) // the replica that took the call, at once
	waitRefused(t, f, revoked)
	for _, h := range f {
		if !allowed(h, other) {
			t.Fatal("another token of the same subject was refused")
		}
	}

	// The other replica lists it, and lifting it there restores the token everywhere.
	list, err := f[1].adminClient().ListRevocations(asAdmin(adminToken), &tokenwisev1.ListRevocationsRequest{})
	if err != nil || len(list.GetRevocations()) != 1 || list.GetRevocations()[0].GetJti() != "leaked-1" {
		t.Fatalf("ListRevocations on the other replica: %v %v", list, err)
	}
	if _, err := f[1].adminClient().RemoveRevocation(asAdmin(adminToken), &tokenwisev1.RemoveRevocationRequest{Id: "token:corp:leaked-1"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range f {
		eventually(t, propagation, func() bool { return allowed(h, revoked) })
	}
}

func TestRevokeSubjectRefusesOnlyOlderTokensOnEveryReplica(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleet(t, 2, func(c *config.Config) { redisStore(redis.Addr())(c); withAdminToken(c) })
	cutoff := time.Now().Truncate(time.Second)
	older := f[0].ordersToken(map[string]any{"sub": "mallory", "jti": "m-old", "iat": cutoff.Add(-time.Minute).Unix()})
	newer := f[0].ordersToken(map[string]any{"sub": "mallory", "jti": "m-new", "iat": cutoff.Add(time.Second).Unix()})
	bystander := f[0].ordersToken(map[string]any{"sub": "bob", "jti": "b-old", "iat": cutoff.Add(-time.Minute).Unix()})

	_, err := f[1].adminClient().RevokeSubject(asAdmin(adminToken), &tokenwisev1.RevokeSubjectRequest{
		Issuer: "corp", Subject: "mallory", IssuedBefore: timestamppb.New(cutoff)})
	if err != nil {
		t.Fatal(err)
	}
	waitRefused(t, f, older)
	for _, h := range f {
		if !allowed(h, newer) || !allowed(h, bystander) {
			t.Fatal("a token issued after the cut-off, or another subject's token, was refused")
		}
	}
}

// A replica stopped and started again on the same Redis still refuses what
// was revoked before and while it was away.
func TestRestartedReplicaStillHonoursRevocations(t *testing.T) {
	redis := redistest.Start(t)
	edit := func(c *config.Config) { redisStore(redis.Addr())(c); withAdminToken(c) }
	f := startFleet(t, 2, edit)
	before := f[0].ordersToken(map[string]any{"sub": "alice", "jti": "before-restart"})
	during := f[0].ordersToken(map[string]any{"sub": "alice", "jti": "during-restart"})
	admin := f[0].adminClient()
	if _, err := admin.RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "before-restart"}); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, f, before)

	f[1].halt()
	if _, err := admin.RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "during-restart"}); err != nil {
		t.Fatal(err)
	}
	again := start(t, edit, func(c *config.Config) {
		c.Issuers[0] = f[0].issuer.Config("corp")
		c.Issuers[0].Audiences = []string{"orders-api"}
	})
	again.waitReady()
	refusedAsRevoked(t, again, before)
	refusedAsRevoked(t, again, during)
	if !allowed(again, f[0].ordersToken(map[string]any{"sub": "alice", "jti": "fresh"})) {
		t.Fatal("the restarted replica refuses a token nobody revoked")
	}
}

// halt stops h's server now, leaving its cleanup harmless.
func (h *harness) halt() {
	h.conn.Close()
	h.cancel()
	err := <-h.done
	h.done <- err // for the cleanup, which waits for it too
}

func TestRevocationInOneProcessWithTheMemoryStore(t *testing.T) {
	h := start(t, withAdminToken)
	h.waitReady()
	admin := h.adminClient()
	now := time.Now()
	token := h.ordersToken(map[string]any{"sub": "alice", "jti": "mem-1"})
	older := h.ordersToken(map[string]any{"sub": "carol", "jti": "c-old", "iat": now.Add(-time.Hour).Unix()})
	newer := h.ordersToken(map[string]any{"sub": "carol", "jti": "c-new", "iat": now.Unix()})
	davesLast := h.ordersToken(map[string]any{"sub": "dave", "jti": "d-1", "iat": now.Add(-time.Second).Unix()})
	if _, err := admin.RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "mem-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeSubject(asAdmin(adminToken), &tokenwisev1.RevokeSubjectRequest{
		Issuer: "corp", Subject: "carol", IssuedBefore: timestamppb.New(now.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	// Without issued_before the cut-off is now.
	if _, err := admin.RevokeSubject(asAdmin(adminToken), &tokenwisev1.RevokeSubjectRequest{Issuer: "corp", Subject: "dave"}); err != nil {
		t.Fatal(err)
	}
	refusedAsRevoked(t, h, token)
	refusedAsRevoked(t, h, older)
	refusedAsRevoked(t, h, davesLast)
	if !allowed(h, newer) {
		t.Fatal("a token issued after the subject's cut-off was refused")
	}
	if !strings.Contains(h.logs.String(), `"reason":"revoked"`) {
		t.Fatal("the decision log does not say the token was revoked")
	}
}

func TestGetTokenUsesCountsAUseLimitedToken(t *testing.T) {
	h := start(t, withAdminToken)
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "dl-1"})
	for range 3 {
		if !read(h.check(envoyRequest("GET", "/download", bearer(token)))).allowed {
			t.Fatal("download refused")
		}
	}
	resp, err := h.adminClient().GetTokenUses(asAdmin(adminToken), &tokenwisev1.GetTokenUsesRequest{Issuer: "corp", Jti: "dl-1"})
	if err != nil || resp.GetUses() != 3 || resp.Limit != nil || resp.GetRevocation() != nil {
		t.Fatalf("GetTokenUses: %v %v, want 3 uses, limit unknown, not revoked", resp, err)
	}
}

func TestAdminCallsNeedTheAdminCredential(t *testing.T) {
	h := start(t, withAdminToken)
	admin := h.adminClient()
	req := &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "x"}
	cases := map[string]struct {
		ctx  context.Context
		want codes.Code
	}{
		"no credential":    {context.Background(), codes.Unauthenticated},
		"not bearer":       {metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic YWRtaW46YWRtaW4="), codes.Unauthenticated},
		"wrong token":      {asAdmin("not-the-token"), codes.PermissionDenied},
		"token prefix":     {asAdmin(adminToken[:len(adminToken)-1]), codes.PermissionDenied},
		"unknown issuer":   {asAdmin(adminToken), codes.InvalidArgument},
		"right credential": {asAdmin(adminToken), codes.OK},
	}
	for name, c := range cases {
		r := req
		if name == "unknown issuer" {
			r = &tokenwisev1.RevokeTokenRequest{Issuer: "nobody", Jti: "x"}
		}
		_, err := admin.RevokeToken(c.ctx, r)
		if status.Code(err) != c.want {
			t.Errorf("%s: %v, want %s", name, err, c.want)
		}
	}
	list, err := admin.ListRevocations(asAdmin(adminToken), &tokenwisev1.ListRevocationsRequest{})
	if err != nil || len(list.GetRevocations()) != 1 {
		t.Fatalf("refused calls changed the set: %v %v", list, err)
	}
	logs := h.logs.String()
	if strings.Contains(logs, adminToken) || !strings.Contains(logs, `"admin call refused"`) || !strings.Contains(logs, `"caller":"token"`) {
		t.Fatalf("admin calls must be logged, refused ones too, without the token:\n%s", logs)
	}
}

func TestAdminAPIIsOffWithoutACredential(t *testing.T) {
	h := start(t)
	_, err := h.adminClient().ListRevocations(asAdmin("anything"), &tokenwisev1.ListRevocationsRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("admin API without admin config: %v, want Unimplemented", err)
	}
}

// With admin.client_ca_file, a client certificate from that CA is the admin
// credential. Here the listener also requires certificates from another CA
// (Envoy's), which may call Check but not TokenAdmin.
func TestAdminMTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	serverCA, adminCA, envoyCA := newCA(t, "server CA"), newCA(t, "admin CA"), newCA(t, "envoy CA")
	serverCert := serverCA.issue(t, "tokenwise", x509.ExtKeyUsageServerAuth)
	h := start(t, func(c *config.Config) {
		c.GRPC.TLS = config.TLS{
			CertFile:     writePEM(t, dir, "server.pem", serverCert.Certificate[0]),
			KeyFile:      writeKey(t, dir, "server-key.pem", serverCert),
			ClientCAFile: writePEM(t, dir, "envoy-ca.pem", envoyCA.cert.Raw),
		}
		c.Admin.ClientCAFile = writePEM(t, dir, "admin-ca.pem", adminCA.cert.Raw)
	})
	h.waitReady()
	operator := tlsClient(t, h, serverCA, adminCA.issue(t, "operator alice", x509.ExtKeyUsageClientAuth))
	envoy := tlsClient(t, h, serverCA, envoyCA.issue(t, "envoy", x509.ExtKeyUsageClientAuth))
	token := h.ordersToken(map[string]any{"sub": "alice", "jti": "mtls-1"})

	if _, err := tokenwisev1.NewTokenAdminClient(envoy).RevokeToken(context.Background(), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "mtls-1"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a certificate from another CA: %v, want PermissionDenied", err)
	}
	if _, err := tokenwisev1.NewTokenAdminClient(operator).RevokeToken(context.Background(), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "mtls-1"}); err != nil {
		t.Fatalf("the admin certificate: %v", err)
	}
	resp, err := authv3.NewAuthorizationClient(envoy).Check(context.Background(), envoyRequest("GET", "/orders/1", bearer(token)))
	if err != nil || read(resp).allowed || read(resp).status != 401 {
		t.Fatalf("Check of the revoked token over mTLS: %v %v", resp, err)
	}
	if !strings.Contains(h.logs.String(), `"caller":"cert:CN=operator alice"`) {
		t.Fatalf("the admin call's log does not name the certificate's subject:\n%s", h.logs.String())
	}
	// A token is no way around a missing certificate: the handshake refuses.
	noCert := tlsClient(t, h, serverCA, nil)
	if _, err := tokenwisev1.NewTokenAdminClient(noCert).ListRevocations(asAdmin("x"), &tokenwisev1.ListRevocationsRequest{}); err == nil {
		t.Fatal("a client without a certificate reached TokenAdmin on an mTLS listener")
	}
}

// Without grpc.tls.client_ca_file, certificates are optional on the
// listener: a caller without one is UNAUTHENTICATED, the admin one is let in.
func TestAdminMTLSWithOptionalClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, adminCA := newCA(t, "server CA"), newCA(t, "admin CA")
	serverCert := serverCA.issue(t, "tokenwise", x509.ExtKeyUsageServerAuth)
	h := start(t, func(c *config.Config) {
		c.GRPC.TLS = config.TLS{
			CertFile: writePEM(t, dir, "server.pem", serverCert.Certificate[0]),
			KeyFile:  writeKey(t, dir, "server-key.pem", serverCert),
		}
		c.Admin.ClientCAFile = writePEM(t, dir, "admin-ca.pem", adminCA.cert.Raw)
	})
	anonymous := tokenwisev1.NewTokenAdminClient(tlsClient(t, h, serverCA, nil))
	if _, err := anonymous.ListRevocations(context.Background(), &tokenwisev1.ListRevocationsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate: %v, want Unauthenticated", err)
	}
	if _, err := anonymous.ListRevocations(asAdmin("guess"), &tokenwisev1.ListRevocationsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a token when none is configured: %v, want PermissionDenied", err)
	}
	operator := tokenwisev1.NewTokenAdminClient(tlsClient(t, h, serverCA, adminCA.issue(t, "operator", x509.ExtKeyUsageClientAuth)))
	if _, err := operator.ListRevocations(context.Background(), &tokenwisev1.ListRevocationsRequest{}); err != nil {
		t.Fatalf("the admin certificate: %v", err)
	}
}

func TestAdminClientCAFileNeedsTLS(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.ClientCAFile = filepath.Join(t.TempDir(), "ca.pem")
	cfg.Policy.Paths = []string{t.TempDir()}
	if err := os.WriteFile(filepath.Join(cfg.Policy.Paths[0], "p.rego"), []byte("package envoy.authz\n\ndefault allow := false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(context.Background(), cfg, server.Options{})
	if err == nil || !strings.Contains(err.Error(), "admin.client_ca_file") {
		t.Fatalf("admin.client_ca_file without grpc.tls: %v", err)
	}
}

// grpcurl finds TokenAdmin through reflection: listed, and its file resolvable.
func TestTokenAdminIsDescribedByReflection(t *testing.T) {
	h := start(t, withAdminToken)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "tokenwise.v1.TokenAdmin"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("reflection does not describe tokenwise.v1.TokenAdmin: %v %v", resp, err)
	}
}
