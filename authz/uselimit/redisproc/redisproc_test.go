package redisproc

import (
	"os"
	"os/exec"
	"testing"
)

// start runs redis-server for a test; it must be installed under CI.
func start(t *testing.T, tls bool) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("redis-server is not installed")
	}
	launch := Start
	if tls {
		launch = StartTLS
	}
	s, err := launch("redis-server", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func TestStartStopRestartKeepsAddress(t *testing.T) {
	s := start(t, false)
	addr := s.Addr()
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	s.Stop()
	if err := ping(s.dialer()); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // a second Stop is harmless
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("Restart moved from %s to %s", addr, s.Addr())
	}
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestStartTLSServesTLSOnly(t *testing.T) {
	s := start(t, true)
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	plain := &Server{port: s.port}
	if err := ping(plain.dialer()); err == nil {
		t.Fatal("plain PING answered by a TLS server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING over TLS after Restart: %v", err)
	}
}

func TestStartReportsAMissingBinary(t *testing.T) {
	if _, err := Start("/nonexistent/redis-server", t.TempDir()); err == nil {
		t.Fatal("Start succeeded without a binary")
	}
}
