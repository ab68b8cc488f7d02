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

// Cluster is a Redis Cluster of masters without replicas, each a Server on
// a loopback port with its cluster bus on another, the 16384 slots split
// evenly between them.
type Cluster struct {
	// Nodes are the masters in slot order: Nodes[0] serves the first slots.
	Nodes []*Server
}

// StartCluster runs masters cluster nodes (binary is redis-server) with
// their files under dir, assigns the slots, joins the nodes and waits until
// every node reports cluster_state:ok. extra arguments go to every node.
func StartCluster(binary, dir string, masters int, extra ...string) (c *Cluster, err error) {
	if masters < 1 {
		return nil, errors.New("redisproc: a cluster needs at least one master")
	}
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	// A short node timeout: a restarted node is seen again quickly.
	extra = append([]string{"--cluster-node-timeout", "2000"}, extra...)
	for i := range masters {
		nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return nil, err
		}
		n, err := launch(&Server{binary: binary, extra: extra, dir: nodeDir, cluster: true})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	if err := c.assignSlots(); err != nil {
		return nil, fmt.Errorf("redisproc: cluster slots: %w", err)
	}
	for _, n := range c.Nodes[1:] {
		if _, err := Do(c.Nodes[0].Addr(), "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(n.port), strconv.Itoa(n.busPort)); err != nil {
			return nil, fmt.Errorf("redisproc: CLUSTER MEET: %w", err)
		}
	}
	if err := c.WaitOK(); err != nil {
		return nil, err
	}
	return c, nil
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

// WaitOK waits until every node knows every other one and reports
// cluster_state:ok.
func (c *Cluster) WaitOK() error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	err := poll(clusterTimeout, func() error {
		for _, n := range c.Nodes {
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
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// firstLines is the first n lines of s, on one line, for error messages.
func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.ReplaceAll(s, "\r", ""), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " ")
}

// NodeFor is the node whose slots hold key (the nodes' slots are as
// StartCluster assigned them).
func (c *Cluster) NodeFor(key string) (*Server, error) {
	reply, err := Do(c.Nodes[0].Addr(), "CLUSTER", "KEYSLOT", key)
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
