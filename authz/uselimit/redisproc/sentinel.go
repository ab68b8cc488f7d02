package redisproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SentinelMaster is the name of the master set a SentinelGroup monitors.
const SentinelMaster = "tokenwise"

// sentinelTimeout bounds how long StartSentinel waits for the sentinels to
// know the replicas and each other.
const sentinelTimeout = 30 * time.Second

// SentinelGroup is a master, its replicas and the sentinels that watch them,
// tuned for tests: a master is deemed down after a second without answers,
// and a failover is retried after a few seconds.
type SentinelGroup struct {
	Master    *Server
	Replicas  []*Server
	Sentinels []*Server
}

// StartSentinel runs a master and replicas (serverBinary, redis-server) and
// sentinels (sentinelBinary, redis-sentinel) with a quorum of a majority,
// their files under dir, and waits until every sentinel sees every replica
// and every other sentinel, so that a failover can happen.
func StartSentinel(serverBinary, sentinelBinary, dir string, replicas, sentinels int) (g *SentinelGroup, err error) {
	g = &SentinelGroup{}
	defer func() {
		if err != nil {
			g.Stop()
		}
	}()
	if err := g.startServers(serverBinary, dir, replicas); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 3000\n"+
		"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, g.Master.port, sentinels/2+1)
	for i := range sentinels {
		d := subdir(dir, "sentinel-"+strconv.Itoa(i))
		path := filepath.Join(d, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		s, err := launch(&Server{binary: sentinelBinary, dir: d, conf: path})
		if err != nil {
			return nil, err
		}
		g.Sentinels = append(g.Sentinels, s)
	}
	if err := g.waitSynced(replicas, sentinels); err != nil {
		return nil, err
	}
	return g, nil
}

// StartReplicated runs a master and replicas (binary is redis-server)
// without sentinels, their files under dir, and waits until every replica is
// online at the master.
func StartReplicated(binary, dir string, replicas int) (g *SentinelGroup, err error) {
	g = &SentinelGroup{}
	defer func() {
		if err != nil {
			g.Stop()
		}
	}()
	if err := g.startServers(binary, dir, replicas); err != nil {
		return nil, err
	}
	if err := g.waitSynced(replicas, 0); err != nil {
		return nil, err
	}
	return g, nil
}

// startServers runs the master and the replicas.
func (g *SentinelGroup) startServers(binary, dir string, replicas int) error {
	var err error
	// No pause before the replicas' first sync (Redis waits 5s by default
	// for more replicas to share a diskless transfer). Every server gets it:
	// a replica can become the master.
	fast := []string{"--repl-diskless-sync-delay", "0"}
	if g.Master, err = launch(&Server{binary: binary, dir: subdir(dir, "master"), extra: fast}); err != nil {
		return err
	}
	for i := range replicas {
		r, err := launch(&Server{binary: binary, dir: subdir(dir, "replica-"+strconv.Itoa(i)),
			extra: append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(g.Master.port)}, fast...)})
		if err != nil {
			return err
		}
		g.Replicas = append(g.Replicas, r)
	}
	return nil
}

// waitSynced waits until the replicas are online at the master and every
// sentinel reports the master ok with all replicas and sentinels.
func (g *SentinelGroup) waitSynced(replicas, sentinels int) error {
	want := fmt.Sprintf("status=ok,address=%s,slaves=%d,sentinels=%d", g.Master.Addr(), replicas, sentinels)
	err := poll(sentinelTimeout, func() error {
		info, err := Do(g.Master.Addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if strings.Count(info, "state=online") != replicas {
			return fmt.Errorf("replicas not online: %s", info)
		}
		for _, s := range g.Sentinels {
			info, err := Do(s.Addr(), "INFO", "sentinel")
			if err != nil {
				return err
			}
			if !strings.Contains(info, want) {
				return fmt.Errorf("sentinel %s: %s", s.Addr(), info)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisproc: sentinels not ready within %v: %w", sentinelTimeout, err)
	}
	return nil
}

// Addrs are the sentinels' host:port addresses.
func (g *SentinelGroup) Addrs() []string { return addrs(g.Sentinels) }

// MasterAddr asks the first sentinel that answers for the current master.
func (g *SentinelGroup) MasterAddr() (string, error) {
	var err error
	for _, s := range g.Sentinels {
		var reply string
		if reply, err = Do(s.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster); err == nil {
			host, port, ok := strings.Cut(reply, "\n")
			if !ok {
				return "", fmt.Errorf("redisproc: sentinel reply %q", reply)
			}
			return host + ":" + port, nil
		}
	}
	return "", err
}

// Stop kills every process of the group.
func (g *SentinelGroup) Stop() {
	for _, s := range g.Sentinels {
		s.Stop()
	}
	for _, r := range g.Replicas {
		r.Stop()
	}
	if g.Master != nil {
		g.Master.Stop()
	}
}

// subdir is dir/name, created; a failure shows when the server cannot start there.
func subdir(dir, name string) string {
	d := filepath.Join(dir, name)
	_ = os.MkdirAll(d, 0o700)
	return d
}
