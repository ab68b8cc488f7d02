package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// DefaultTimeout bounds one Redis call for rate limits: a request waits this
// long at most for a slow or unreachable store before on_store_error decides.
const DefaultTimeout = 250 * time.Millisecond

// takeScript is GCRA over every limit of one request in one atomic step, on
// the server's clock (TIME), in microseconds. KEYS are the limits' keys;
// ARGV holds, per limit, its interval, its tolerance (burst × interval) and
// its cost. A key holds its theoretical arrival time and expires when its
// bucket is full again. Nothing is written unless every limit allows, so a
// refused request takes from none. It returns per limit {allowed,
// remaining, retry after, reset} (times in microseconds).
const takeScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, nexts, ok = {}, {}, true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3*i-2])
  local tolerance = tonumber(ARGV[3*i-1])
  local cost = tonumber(ARGV[3*i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local nxt = tat + cost * interval
  local ahead = nxt - now
  if ahead > tolerance then
    ok = false
    out[i] = {0, math.max(0, math.floor((tolerance - (tat - now)) / interval)), ahead - tolerance, tat - now}
  else
    out[i] = {1, math.floor((tolerance - ahead) / interval), 0, ahead}
  end
  nexts[i] = nxt
end
if ok then
  for i = 1, #KEYS do
    local ttl = nexts[i] - now
    if ttl > 0 then
      redis.call('SET', KEYS[i], string.format('%d', nexts[i]), 'PX', math.ceil(ttl / 1000))
    end
  end
end
return out
`

// Redis is the Store every replica shares. One Take is one EVALSHA (rueidis
// falls back to EVAL when the server lost the script) on one auto-pipelined
// connection. A key known to be over its limit is refused locally until its
// retry time, without a round trip, so a client hammering a refused limit
// costs Redis nothing.
type Redis struct {
	client  rueidis.Client
	prefix  string
	script  *rueidis.Lua
	timeout time.Duration
	over    *overLimit
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on client, whose keys start with prefix; each call
// waits timeout at most (DefaultTimeout when timeout ≤ 0). Close closes client.
func NewRedis(client rueidis.Client, prefix string, timeout time.Duration) *Redis {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Redis{
		client: client, prefix: prefix, script: rueidis.NewLuaScript(takeScript), timeout: timeout,
		over: newOverLimit(DefaultMaxKeys/16, func() int64 { return time.Now().UnixNano() }),
	}
}

// Key is the Redis key of a limit: the prefix, then a SHA-256 of the name and
// key in braces. The braces make the hash the key's Redis Cluster hash tag,
// so a bucket is one key on one slot whatever other limits a request
// stacks on it. The raw key (a subject, an address) is never stored.
func (r *Redis) Key(l Limit) string {
	return r.prefix + "rl:{" + digestHex(l) + "}"
}

func digestHex(l Limit) string {
	h := sha256.New()
	h.Write([]byte(l.Name))
	h.Write([]byte{0})
	h.Write([]byte(l.Key))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Take checks and takes every limit in one script run. It returns at once,
// refused, when a limit is known locally to be exhausted.
func (r *Redis) Take(ctx context.Context, limits []Limit) (Result, error) {
	keys := make([]string, len(limits))
	for i, l := range limits {
		keys[i] = r.Key(l)
	}
	if res, ok := r.over.check(limits, keys); ok {
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	args := make([]string, 0, 3*len(limits))
	for _, l := range limits {
		interval := l.Interval().Microseconds()
		args = append(args, strconv.FormatInt(interval, 10), strconv.FormatInt(interval*l.Burst, 10), strconv.FormatInt(l.Cost, 10))
	}
	res, err := r.run(ctx, keys, args, limits)
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	r.over.remember(res, keys)
	return res, nil
}

func (r *Redis) run(ctx context.Context, keys, args []string, limits []Limit) (Result, error) {
	rows, err := r.script.Exec(ctx, r.client, keys, args).ToArray()
	if err != nil {
		return Result{}, err
	}
	if len(rows) != len(limits) {
		return Result{}, fmt.Errorf("script returned %d rows for %d limits", len(rows), len(limits))
	}
	res := Result{Allowed: true, Statuses: make([]Status, len(limits))}
	for i, row := range rows {
		st, err := status(row, limits[i])
		if err != nil {
			return Result{}, err
		}
		res.Statuses[i] = st
		res.Allowed = res.Allowed && st.Allowed
	}
	return res, nil
}

// status reads one row of the script's answer.
func status(row rueidis.RedisMessage, l Limit) (Status, error) {
	vals, err := row.AsIntSlice()
	if err != nil || len(vals) != 4 {
		return Status{}, fmt.Errorf("unexpected script row: %v", err)
	}
	return Status{
		Limit:      l,
		Allowed:    vals[0] == 1,
		Remaining:  vals[1],
		RetryAfter: time.Duration(vals[2]) * time.Microsecond,
		Reset:      time.Duration(vals[3]) * time.Microsecond,
	}, nil
}

// Close closes the connection to Redis.
func (r *Redis) Close() error {
	r.client.Close()
	return nil
}
