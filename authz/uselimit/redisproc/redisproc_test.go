package redisproc

import (
	"os"
	"os/exec"
	"strings"
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

// needs skips a test when binary is missing, except under CI.
func needs(t *testing.T, binary string) {
	t.Helper()
	if _, err := exec.LookPath(binary); err != nil && os.Getenv("CI") != "true" {
		t.Skip(binary + " is not installed")
	}
}

func TestStartClusterServesEverySlot(t *testing.T) {
	needs(t, "redis-server")
	c, err := StartCluster("redis-server", t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	// Each node owns a third of the slots: "a" (slot 15495) lives on the last.
	if _, err := Do(c.Nodes[2].Addr(), "SET", "a", "1"); err != nil {
		t.Fatalf("SET on the owner: %v", err)
	}
	if _, err := Do(c.Nodes[0].Addr(), "SET", "a", "1"); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("SET on another node: %v, want MOVED", err)
	}
	// A restarted node keeps its identity and slots.
	if err := c.Nodes[1].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitOK(); err != nil {
		t.Fatal(err)
	}
}

func TestStartSentinelWatchesTheMaster(t *testing.T) {
	needs(t, "redis-server")
	needs(t, "redis-sentinel")
	g, err := StartSentinel("redis-server", "redis-sentinel", t.TempDir(), 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	addr, err := g.MasterAddr()
	if err != nil || addr != g.Master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", addr, err, g.Master.Addr())
	}
	if role, err := Do(g.Replicas[0].Addr(), "ROLE"); err != nil || !strings.HasPrefix(role, "slave") {
		t.Fatalf("replica ROLE = %q, %v", role, err)
	}
}
