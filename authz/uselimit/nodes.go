package uselimit

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/authz/observe"
)

// probeNodes PINGs every node the client knows, in parallel: the one
// server, each cluster node, or the master the sentinels named last.
func (r *Redis) probeNodes(ctx context.Context) []observe.NodeStatus {
	nodes := r.client.Nodes()
	out := make([]observe.NodeStatus, 0, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for addr, c := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := c.Do(ctx, c.B().Ping().Build()).Error()
			mu.Lock()
			out = append(out, observe.NodeStatus{Address: addr, Err: err, Latency: time.Since(start)})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
