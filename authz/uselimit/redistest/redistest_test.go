package redistest

import (
	"testing"
)

func TestStartStopRestartKeepsAddress(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	s.Stop()
	if err := ping(s.dialer()); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // a second Stop is harmless
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Restart moved from %s to %s", addr, s.Addr())
	}
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestStartSkipsOutsideCIWhenServerCannotStart(t *testing.T) {
	t.Setenv("CI", "")
	old := Binary
	Binary = "/nonexistent/redis-server"
	defer func() { Binary = old }()
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
		t.Error("Start returned without a server")
	})
	if !skipped {
		t.Fatal("Start did not skip")
	}
}

func TestStartTLSServesTLSOnly(t *testing.T) {
	s := StartTLS(t)
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	plain := &Server{port: s.port}
	if err := ping(plain.dialer()); err == nil {
		t.Fatal("plain PING answered by a TLS server")
	}
	s.Restart()
	if err := ping(s.dialer()); err != nil {
		t.Fatalf("PING over TLS after Restart: %v", err)
	}
}
