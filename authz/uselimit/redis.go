package uselimit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
)

// fallbackTimeout bounds a Redis call whose context has no deadline, so a
// hung server cannot hold a Check forever. Checks normally carry Envoy's
// deadline, which is then used as is.
const fallbackTimeout = 2 * time.Second

// useScript counts one use if fewer than ARGV[1] are counted, and gives a new
// count its lifetime (ARGV[2] milliseconds) on the first use. Like the memory
// store, the count stops at the limit, so it is the number of uses allowed.
// Redis runs a script atomically, which makes N-use limits exact across replicas.
const useScript = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`

// Redis is the Store shared by every replica. Calls are auto-pipelined over
// one connection, which rueidis re-dials on its own after a failure.
type Redis struct {
	client rueidis.Client
	prefix string
	use    *rueidis.Lua
	// wait is wait_replicas: a use counts once this many replicas have it.
	wait        int64
	waitTimeout time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store for the Redis server in cfg. It does not need the
// server to be up: when it is not, NewRedis still succeeds, every call
// returns an error until the server answers, and then calls work without a
// new store. Only a configuration that cannot work is an error.
func NewRedis(cfg config.Redis) (*Redis, error) {
	return newRedis(cfg, nil)
}

// newRedis is NewRedis with the CAs a TLS connection trusts (nil: the
// system's, which SSL_CERT_FILE and SSL_CERT_DIR can extend).
func newRedis(cfg config.Redis, roots *x509.CertPool) (*Redis, error) {
	client, err := newRedisClient(cfg, "tokenwise", roots)
	if err != nil {
		return nil, fmt.Errorf("uselimit: %w", err)
	}
	r := &Redis{client: client, prefix: cfg.KeyPrefix, use: rueidis.NewLuaScript(useScript),
		wait: int64(cfg.WaitReplicas), waitTimeout: cfg.WaitTimeout}
	if r.waitTimeout <= 0 {
		r.waitTimeout = defaultWaitTimeout
	}
	return r, nil
}

// NewRedisClient connects to the Redis server in cfg as clientName. It does
// not need the server to be up: a dial error at start only means calls fail
// until the server answers, and rueidis re-dials on its own. Only a
// configuration that cannot work is an error. The revocation set uses it
// too, with a connection of its own.
func NewRedisClient(cfg config.Redis, clientName string) (rueidis.Client, error) {
	return newRedisClient(cfg, clientName, nil)
}

func newRedisClient(cfg config.Redis, clientName string, roots *x509.CertPool) (rueidis.Client, error) {
	opt := rueidis.ClientOption{
		InitAddress: []string{cfg.Address},
		Username:    cfg.Username,
		Password:    cfg.Password,
		SelectDB:    cfg.DB,
		ClientName:  clientName,
		// ForceSingleClient skips cluster discovery, and with it rueidis
		// returns a usable client even when the first dial fails.
		ForceSingleClient: true,
		// Counts are written on every read; client-side caching would be wrong.
		DisableCache: true,
		// One auto-pipelined connection, not rueidis's default of four: after
		// a Redis restart each stale connection fails one call on its next
		// use, so four would turn one outage into errors scattered over the
		// next calls. Redis serves one connection at a time anyway. In
		// cluster mode this is one connection per node.
		PipelineMultiplex: -1,
	}
	if cfg.TLS {
		opt.TLSConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	if err := applyMode(&opt, cfg); err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(opt)
	if client != nil {
		return client, nil
	}
	switch cfg.Mode {
	case config.RedisCluster:
		// Cluster and sentinel clients must read the topology to exist; keep
		// trying in the background, so tokenwise starts without its Redis.
		return newPendingClient(opt, rueidis.ClientModeCluster, err)
	case config.RedisSentinel:
		return newPendingClient(opt, rueidis.ClientModeSentinel, err)
	}
	return nil, fmt.Errorf("redis %s: %w", modeName(cfg.Mode), err)
}

// Use records one use of key (under the store's key prefix) if fewer than
// limit uses are counted, and reports whether it did. One-use limits are a
// single SET NX PX; larger limits run an atomic script. A limit below 1
// allows nothing and records nothing; ttl is clamped to [MinTTL, MaxTTL].
// The call ends at ctx's deadline (fallbackTimeout when it has none).
func (r *Redis) Use(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	if limit < 1 {
		return false, nil
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	k := r.prefix + key
	ms := ceilMillis(clampTTL(ttl))
	if r.wait > 0 {
		return r.useAndWait(ctx, k, limit, ms)
	}
	if limit == 1 {
		return r.useOnce(ctx, k, ms)
	}
	args := []string{strconv.FormatInt(limit, 10), strconv.FormatInt(ms, 10)}
	n, err := r.use.Exec(ctx, r.client, []string{k}, args).AsInt64()
	if err != nil {
		return false, fmt.Errorf("uselimit: redis: %w", err)
	}
	return n == 1, nil
}

// useOnce sets k only if it does not exist: the first use wins.
func (r *Redis) useOnce(ctx context.Context, k string, ms int64) (bool, error) {
	cmd := r.client.B().Set().Key(k).Value("1").Nx().PxMilliseconds(ms).Build()
	err := r.client.Do(ctx, cmd).Error()
	switch {
	case err == nil:
		return true, nil
	case rueidis.IsRedisNil(err): // NX: the key exists, the one use is spent
		return false, nil
	default:
		return false, fmt.Errorf("uselimit: redis: %w", err)
	}
}

// Uses returns the number of allowed uses of key (0 when absent or expired).
func (r *Redis) Uses(ctx context.Context, key string) (int64, error) {
	ctx, cancel := callContext(ctx)
	defer cancel()
	n, err := r.client.Do(ctx, r.client.B().Get().Key(r.prefix+key).Build()).AsInt64()
	switch {
	case err == nil:
		return n, nil
	case rueidis.IsRedisNil(err):
		return 0, nil
	default:
		return 0, fmt.Errorf("uselimit: redis: %w", err)
	}
}

// Close closes the connection to Redis.
func (r *Redis) Close() error {
	r.client.Close()
	return nil
}

// callContext gives ctx a deadline when it has none.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, fallbackTimeout)
}

// ceilMillis rounds d up to whole milliseconds, so a count never dies before
// the token it counts.
func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
