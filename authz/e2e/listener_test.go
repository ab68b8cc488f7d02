package e2e

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/tokenwise/tokenwise/authz/config"
)

// tryCheck asks for a public route over conn and returns the gRPC error.
func tryCheck(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := authv3.NewAuthorizationClient(conn).Check(ctx, envoyRequest("GET", "/public", nil))
	return err
}

func TestTheGRPCListenerSpeaksTLSAndMutualTLS(t *testing.T) {
	serverCA, envoyCA := newCA(t, "server CA"), newCA(t, "envoy CA")
	serverCert := serverCA.issue(t, "tokenwise", x509.ExtKeyUsageServerAuth)
	dir := t.TempDir()
	serverTLS := config.TLS{CertFile: writePEM(t, dir, "server.pem", serverCert.Certificate[0]), KeyFile: writeKey(t, dir, "server-key.pem", serverCert)}

	t.Run("TLS", func(t *testing.T) {
		h := start(t, func(c *config.Config) { c.GRPC.TLS = serverTLS })
		if err := tryCheck(tlsClient(t, h, serverCA, nil)); err != nil {
			t.Fatalf("a TLS client was refused: %v", err)
		}
	})

	t.Run("mutual TLS", func(t *testing.T) {
		mutual := serverTLS
		mutual.ClientCAFile = writePEM(t, dir, "envoy-ca.pem", envoyCA.cert.Raw)
		h := start(t, func(c *config.Config) { c.GRPC.TLS = mutual })
		if err := tryCheck(tlsClient(t, h, serverCA, nil)); err == nil {
			t.Fatal("a client without a certificate was served under mTLS")
		}
		if err := tryCheck(tlsClient(t, h, serverCA, serverCA.issue(t, "stranger", x509.ExtKeyUsageClientAuth))); err == nil {
			t.Fatal("a client certificate from another CA was served under mTLS")
		}
		if err := tryCheck(tlsClient(t, h, serverCA, envoyCA.issue(t, "envoy", x509.ExtKeyUsageClientAuth))); err != nil {
			t.Fatalf("a client with a certificate from the CA was refused: %v", err)
		}
	})
}

func TestReflectionIsOnByDefaultAndCanBeTurnedOff(t *testing.T) {
	services := func(h *harness) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			return nil
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		return names
	}
	on := start(t)
	if got := services(on); !contains(got, "envoy.service.auth.v3.Authorization") || !contains(got, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v", got)
	}
	off := start(t, func(c *config.Config) { f := false; c.GRPC.Reflection = &f })
	if got := services(off); got != nil {
		t.Errorf("reflection answered while turned off: %v", got)
	}
}
