package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/tokenwise/tokenwise/authz/config"
)

// pki is a throwaway certificate authority with files on disk, as an operator would have them.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

// issue signs a certificate for name (a server for 127.0.0.1, or a client)
// and returns its cert and key files.
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// tryCheck calls Check over a connection with creds and returns the gRPC error.
func tryCheck(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = authv3.NewAuthorizationClient(conn).Check(ctx, envoyRequest("GET", "/public", nil))
	return err
}

func TestTheGRPCListenerSpeaksTLSAndMutualTLS(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.issue(t, "tokenwise", true)

	t.Run("TLS", func(t *testing.T) {
		h := start(t, func(c *config.Config) { c.GRPC.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile} })
		if err := tryCheck(h.srv.GRPCAddr(), credentials.NewTLS(&tls.Config{RootCAs: p.pool()})); err != nil {
			t.Fatalf("a TLS client was refused: %v", err)
		}
	})

	t.Run("mutual TLS", func(t *testing.T) {
		h := start(t, func(c *config.Config) {
			c.GRPC.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: p.caFile}
		})
		if err := tryCheck(h.srv.GRPCAddr(), credentials.NewTLS(&tls.Config{RootCAs: p.pool()})); err == nil {
			t.Fatal("a client without a certificate was served under mTLS")
		}
		clientCert, clientKey := p.issue(t, "envoy", false)
		pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
		if err != nil {
			t.Fatal(err)
		}
		creds := credentials.NewTLS(&tls.Config{RootCAs: p.pool(), Certificates: []tls.Certificate{pair}})
		if err := tryCheck(h.srv.GRPCAddr(), creds); err != nil {
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
