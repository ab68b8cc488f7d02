package redisproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clusterTimeout bounds how long StartCluster waits for cluster_state:ok.
const clusterTimeout = 20 * time.Second

// Cluster is a Redis Cluster on loopback ports, each node a Server with
// its cluster bus on another port, the 16384 slots split evenly between the
// masters.
type Cluster struct {
	// Nodes are the masters in slot order: Nodes[0] serves the first slots.
	Nodes []*Server
	// Replicas[i] are the replicas of Nodes[i] (none for StartCluster).
	Replicas [][]*Server
}

// StartCluster runs masters cluster nodes (binary is redis-server) with
// their files under dir, assigns the slots, joins the nodes and waits until
// every node reports cluster_state:ok. extra arguments go to every node.
func StartCluster(binary, dir string, masters int, extra ...string) (*Cluster, error) {
	return StartClusterWithReplicas(binary, dir, masters, 0, extra...)
}

// StartClusterWithReplicas is StartCluster with replicas replicas for each
// master, so that the cluster fails over when a master dies; it also waits
// until every replica is in sync.
func StartClusterWithReplicas(binary, dir string, masters, replicas int, extra ...string) (c *Cluster, err error) {
	if masters < 1 {
		return nil, errors.New("redisproc: a cluster needs at least one master")
	}
	c = &Cluster{Replicas: make([][]*Server, masters)}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	// A short node timeout: a restarted node is seen again, and a dead
	// master replaced, within seconds. No pause before a replica's first sync.
	extra = append([]string{"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0"}, extra...)
	node := func(name string) (*Server, error) {
		nodeDir := filepath.Join(dir, name)
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return nil, err
		}
		return launch(&Server{binary: binary, extra: extra, dir: nodeDir, cluster: true})
	}
	for i := range masters {
		n, err := node("node-" + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		for j := range replicas {
			r, err := node(fmt.Sprintf("node-%d-replica-%d", i, j))
			if err != nil {
				return nil, err
			}
			c.Replicas[i] = append(c.Replicas[i], r)
		}
	}
	if err := c.assignSlots(); err != nil {
		return nil, fmt.Errorf("redisproc: cluster slots: %w", err)
	}
	for _, n := range c.all()[1:] {
		if _, err := Do(c.Nodes[0].Addr(), "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(n.port), strconv.Itoa(n.busPort)); err != nil {
			return nil, fmt.Errorf("redisproc: CLUSTER MEET: %w", err)
		}
	}
	if err := c.replicate(); err != nil {
		return nil, err
	}
	if err := c.WaitOK(); err != nil {
		return nil, err
	}
	return c, nil
}

// all is every node, masters first.
func (c *Cluster) all() []*Server {
	out := append([]*Server(nil), c.Nodes...)
	for _, rs := range c.Replicas {
		out = append(out, rs...)
	}
	return out
}

// replicate makes each replica replicate its master, once it knows the
// master through gossip, and waits until every master has its replicas online.
func (c *Cluster) replicate() error {
	for i, rs := range c.Replicas {
		if len(rs) == 0 {
			continue
		}
		id, err := Do(c.Nodes[i].Addr(), "CLUSTER", "MYID")
		if err != nil {
			return err
		}
		for _, r := range rs {
			err := poll(clusterTimeout, func() error {
				_, err := Do(r.Addr(), "CLUSTER", "REPLICATE", id)
				return err
			})
			if err != nil {
				return fmt.Errorf("redisproc: CLUSTER REPLICATE: %w", err)
			}
		}
		err = poll(clusterTimeout, func() error {
			info, err := Do(c.Nodes[i].Addr(), "INFO", "replication")
			if err == nil && strings.Count(info, "state=online") != len(rs) {
				err = fmt.Errorf("replicas of %s not online: %s", c.Nodes[i].Addr(), info)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("redisproc: %w", err)
		}
	}
	return nil
}

// assignSlots gives node i the i-th of len(Nodes) even ranges of slots.
func (c *Cluster) assignSlots() error {
	const slots = 16384
	for i, n := range c.Nodes {
		lo, hi := i*slots/len(c.Nodes), (i+1)*slots/len(c.Nodes)-1
		if _, err := Do(n.Addr(), "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return err
		}
	}
	return nil
}

// WaitOK waits until every running node knows every other one and reports
// cluster_state:ok.
func (c *Cluster) WaitOK() error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.all()))
	err := poll(clusterTimeout, func() error {
		for _, n := range c.all() {
			if !n.running() {
				continue
			}
			info, err := Do(n.Addr(), "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, want) {
				return fmt.Errorf("node %s not ready: %s", n.Addr(), firstLines(info, 2))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisproc: cluster not ok within %v: %w", clusterTimeout, err)
	}
	return nil
}

// Addrs are the nodes' host:port addresses, the seeds a client starts from.
func (c *Cluster) Addrs() []string { return addrs(c.Nodes) }

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.all() {
		n.Stop()
	}
}

// firstLines is the first n lines of s, on one line, for error messages.
func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.ReplaceAll(s, "\r", ""), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " ")
}

// NodeFor is the master whose slots hold key as StartCluster assigned
// them (after a failover, a replica of it serves them).
func (c *Cluster) NodeFor(key string) (*Server, error) {
	var reply string
	err := errors.New("no node runs")
	for _, n := range c.all() {
		if reply, err = Do(n.Addr(), "CLUSTER", "KEYSLOT", key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	slot, err := strconv.Atoi(reply)
	if err != nil {
		return nil, err
	}
	for i, n := range c.Nodes {
		if slot < (i+1)*16384/len(c.Nodes) {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redisproc: slot %d out of range", slot)
}
