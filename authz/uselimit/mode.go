package uselimit

import (
	"fmt"
	"net"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
)

// topologyRefresh is how often a cluster or sentinel client re-reads the
// topology on its own. Clients also react at once to what they see (MOVED
// replies, broken connections, +switch-master), but a master demoted
// without closing its connections is only noticed by this periodic check.
const topologyRefresh = 5 * time.Second

// applyMode sets opt's addresses for cfg.Mode: one server (standalone), seed
// nodes whose cluster rueidis discovers and follows (cluster), or sentinels
// that name the master of cfg.SentinelMaster and announce its failovers
// (sentinel).
func applyMode(opt *rueidis.ClientOption, cfg config.Redis) error {
	switch cfg.Mode {
	case config.RedisStandalone, "":
		if opt.TLSConfig != nil {
			host, _, err := net.SplitHostPort(cfg.Address)
			if err != nil {
				return fmt.Errorf("redis address %q: %w", cfg.Address, err)
			}
			opt.TLSConfig.ServerName = host
		}
		return nil
	case config.RedisCluster:
		if len(cfg.Addresses) == 0 {
			return fmt.Errorf("redis cluster: no seed addresses")
		}
		opt.InitAddress = cfg.Addresses
		opt.ForceSingleClient = false
		// Any one seed that answers is enough; shuffling spreads the
		// replicas' first topology reads over the seeds.
		opt.ShuffleInit = true
		opt.ClusterOption.ShardsRefreshInterval = topologyRefresh
		// TLS: the server name comes from each node's own address.
		return nil
	case config.RedisSentinel:
		if len(cfg.Addresses) == 0 || cfg.SentinelMaster == "" {
			return fmt.Errorf("redis sentinel: sentinel addresses and sentinel_master are required")
		}
		opt.InitAddress = cfg.Addresses
		opt.ForceSingleClient = false
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet:               cfg.SentinelMaster,
			Password:                cfg.SentinelPassword,
			ClientName:              opt.ClientName,
			TopologyRefreshInterval: topologyRefresh,
		}
		if opt.TLSConfig != nil {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
		return nil
	}
	return fmt.Errorf("redis mode %q: want standalone, cluster or sentinel", cfg.Mode)
}

// modeName names a configured mode in messages ("" is standalone).
func modeName(mode string) string {
	if mode == "" {
		return config.RedisStandalone
	}
	return mode
}
