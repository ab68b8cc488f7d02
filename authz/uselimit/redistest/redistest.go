// Package redistest runs real redis-server processes for tests (see package
// redisproc) — one server, a cluster, or a sentinel group — on free loopback
// ports, without persistence, stopped when the test ends. A test that cannot start one fails under CI and skips elsewhere.
package redistest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
)

// Binary is the redis-server executable Start runs.
var Binary = "redis-server"

// Server is a redis-server process stopped on t.Cleanup.
type Server struct {
	*redisproc.Server
	t testing.TB
}

// Start runs redis-server on a free loopback port and waits until it answers
// PING. extra arguments are appended to the command line (for example
// "--requirepass", "secret"). When redis-server cannot start, Start fails the
// test if the environment variable CI is "true" and skips it otherwise.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return wrap(t)(redisproc.Start(Binary, t.TempDir(), extra...))
}

// StartTLS is Start for a server that only speaks TLS, with a certificate
// for 127.0.0.1 that RootCAs trusts.
func StartTLS(t testing.TB, extra ...string) *Server {
	t.Helper()
	return wrap(t)(redisproc.StartTLS(Binary, t.TempDir(), extra...))
}

func wrap(t testing.TB) func(*redisproc.Server, error) *Server {
	return func(s *redisproc.Server, err error) *Server {
		t.Helper()
		unavailable(t, err)
		t.Cleanup(s.Stop)
		return &Server{Server: s, t: t}
	}
}

// Restart starts the server again on the same address; it fails the test
// when the server cannot start.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Server.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// SentinelBinary is the redis-sentinel executable StartSentinel runs.
var SentinelBinary = "redis-sentinel"

// StartCluster runs a Redis Cluster of masters nodes (see
// redisproc.StartCluster), stopped when the test ends; like Start, it fails
// the test under CI and skips it elsewhere when the cluster cannot start.
func StartCluster(t testing.TB, masters int) *redisproc.Cluster {
	t.Helper()
	c, err := redisproc.StartCluster(Binary, t.TempDir(), masters)
	unavailable(t, err)
	t.Cleanup(c.Stop)
	return c
}

// StartSentinel runs a master with replicas watched by sentinels (see
// redisproc.StartSentinel), stopped when the test ends; like Start, it fails
// the test under CI and skips it elsewhere when the group cannot start.
func StartSentinel(t testing.TB, replicas, sentinels int) *redisproc.SentinelGroup {
	t.Helper()
	g, err := redisproc.StartSentinel(Binary, SentinelBinary, t.TempDir(), replicas, sentinels)
	unavailable(t, err)
	t.Cleanup(g.Stop)
	return g
}

// unavailable fails (under CI) or skips the test when err says a Redis
// process could not start.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprint("redistest: ", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// StartReplicated runs a master with replicas and no sentinels (see
// redisproc.StartReplicated), stopped when the test ends; like Start, it
// fails the test under CI and skips it elsewhere when it cannot start.
func StartReplicated(t testing.TB, replicas int) *redisproc.SentinelGroup {
	t.Helper()
	g, err := redisproc.StartReplicated(Binary, t.TempDir(), replicas)
	unavailable(t, err)
	t.Cleanup(g.Stop)
	return g
}

// StartClusterWithReplicas is StartCluster with replicas replicas per master
// (see redisproc.StartClusterWithReplicas).
func StartClusterWithReplicas(t testing.TB, masters, replicas int) *redisproc.Cluster {
	t.Helper()
	c, err := redisproc.StartClusterWithReplicas(Binary, t.TempDir(), masters, replicas)
	unavailable(t, err)
	t.Cleanup(c.Stop)
	return c
}

// Eventually calls f every 20ms until it returns nil, and fails the test
// with what and f's last error when it still fails after ten seconds: a
// generous bound for a replica or a failover to catch up, not a timing
// assertion.
func Eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
