package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeProbeTimeout bounds the probe of a store's nodes during one scrape.
const nodeProbeTimeout = time.Second

// NodeStatus is what one probe learned about one node of a store.
type NodeStatus struct {
	// Address is the node's host:port.
	Address string
	// Err is nil when the node answered.
	Err error
	// Latency is how long the node took to answer.
	Latency time.Duration
}

// StoreNodes makes every scrape probe the nodes of the named store (the
// Redis server, each cluster master, the sentinel group's current master)
// and report each one as tokenwise_use_limit_store_node_up and
// tokenwise_use_limit_store_node_ping_seconds, labelled by address. probe is
// called once per scrape with a deadline.
func (m *Metrics) StoreNodes(store string, probe func(context.Context) []NodeStatus) {
	if m == nil {
		return
	}
	m.registry.MustRegister(&nodeCollector{store: store, probe: probe})
}

var (
	nodeUpDesc = prometheus.NewDesc("tokenwise_use_limit_store_node_up",
		"Whether a node of the use-limit store answered a PING at scrape time (1) or not (0), by store and node address.",
		[]string{"store", "address"}, nil)
	nodePingDesc = prometheus.NewDesc("tokenwise_use_limit_store_node_ping_seconds",
		"How long a node of the use-limit store took to answer a PING at scrape time, by store and node address.",
		[]string{"store", "address"}, nil)
)

// nodeCollector reports a store's nodes; the set of nodes changes with the
// topology, so the collector is unchecked (it describes nothing up front).
type nodeCollector struct {
	store string
	probe func(context.Context) []NodeStatus
}

// Describe describes nothing: the collector is unchecked.
func (c *nodeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect probes the nodes and reports each.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), nodeProbeTimeout)
	defer cancel()
	for _, n := range c.probe(ctx) {
		up := 0.0
		if n.Err == nil {
			up = 1
			ch <- prometheus.MustNewConstMetric(nodePingDesc, prometheus.GaugeValue, n.Latency.Seconds(), c.store, n.Address)
		}
		ch <- prometheus.MustNewConstMetric(nodeUpDesc, prometheus.GaugeValue, up, c.store, n.Address)
	}
}
