package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/uselimit"
)

// refundScript gives back what the take script took: KEYS are buckets,
// ARGV[i] what was taken from KEYS[i] (cost × interval, microseconds). A
// bucket back at full is deleted, as the take script would let it expire.
const refundScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') - tonumber(ARGV[i])
  if tat <= now then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  end
end
return 0
`

// refund runs refundScript; it is safe for concurrent use by every store.
var refund = rueidis.NewLuaScript(refundScript)

// exec runs the take script over keys (args holds three per key) and
// returns one row per key, in order. A Redis Cluster runs a script only over
// keys of one hash slot, and every bucket has a slot of its own (see Key):
// there the keys are grouped by slot and each group runs at once, all
// groups concurrently, each all-or-nothing on its own shard. When some
// groups allow and another refuses, the allowing groups are refunded before
// exec returns, so a refused request keeps no capacity of any bucket — a
// client refused by its own limit cannot drain a limit it shares with
// others. Between the take and the refund, a concurrent request may see
// that capacity taken: across shards, stacked limits never let more through
// than each allows, but under contention they can let a little less.
func (r *Redis) exec(ctx context.Context, keys, args []string) ([]rueidis.RedisMessage, error) {
	var groups [][]int
	if len(keys) > 1 && r.client.Mode() == rueidis.ClientModeCluster {
		groups = bySlot(keys)
	}
	if len(groups) < 2 {
		return r.script.Exec(ctx, r.client, keys, args).ToArray()
	}
	rows := make([]rueidis.RedisMessage, len(keys))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for g, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = r.execGroup(ctx, keys, args, idx, rows)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			// A group that answered may have taken: give it back.
			r.refundAllowed(ctx, keys, args, groups, rows, errs)
			return nil, err
		}
	}
	if !allAllowed(rows) {
		r.refundAllowed(ctx, keys, args, groups, rows, errs)
	}
	return rows, nil
}

// refundAllowed gives back what each group that answered and allowed took,
// all groups concurrently. It is best effort: a refund that fails leaves
// the capacity taken until the bucket refills.
func (r *Redis) refundAllowed(ctx context.Context, keys, args []string, groups [][]int, rows []rueidis.RedisMessage, errs []error) {
	var wg sync.WaitGroup
	for g, idx := range groups {
		if errs[g] != nil || !allAllowed(pick(rows, idx)) {
			continue
		}
		ks := make([]string, len(idx))
		amounts := make([]string, len(idx))
		for j, i := range idx {
			ks[j] = keys[i]
			interval, _ := strconv.ParseInt(args[3*i], 10, 64)
			cost, _ := strconv.ParseInt(args[3*i+2], 10, 64)
			amounts[j] = strconv.FormatInt(interval*cost, 10)
		}
		wg.Go(func() { _ = refund.Exec(ctx, r.client, ks, amounts).Error() })
	}
	wg.Wait()
}

// allAllowed reports whether every row says allowed.
func allAllowed(rows []rueidis.RedisMessage) bool {
	for _, row := range rows {
		vals, err := row.AsIntSlice()
		if err != nil || len(vals) == 0 || vals[0] != 1 {
			return false
		}
	}
	return true
}

// pick is the rows at idx.
func pick(rows []rueidis.RedisMessage, idx []int) []rueidis.RedisMessage {
	out := make([]rueidis.RedisMessage, len(idx))
	for j, i := range idx {
		out[j] = rows[i]
	}
	return out
}

// execGroup runs the script over the keys at idx and stores their rows.
func (r *Redis) execGroup(ctx context.Context, keys, args []string, idx []int, rows []rueidis.RedisMessage) error {
	ks := make([]string, len(idx))
	as := make([]string, 0, 3*len(idx))
	for j, i := range idx {
		ks[j] = keys[i]
		as = append(as, args[3*i:3*i+3]...)
	}
	part, err := r.script.Exec(ctx, r.client, ks, as).ToArray()
	if err != nil {
		return err
	}
	if len(part) != len(idx) {
		return fmt.Errorf("script returned %d rows for %d limits", len(part), len(idx))
	}
	for j, i := range idx {
		rows[i] = part[j]
	}
	return nil
}

// bySlot groups the indexes of keys by hash slot, in order of first appearance.
func bySlot(keys []string) [][]int {
	var groups [][]int
	at := map[uint16]int{}
	for i, k := range keys {
		s := uselimit.KeySlot(k)
		g, ok := at[s]
		if !ok {
			g = len(groups)
			at[s] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}
