package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const overShards = 16

// overLimit remembers, for keys a store refused, until when they stay
// refused: a request that takes at least the refused cost cannot pass before
// its retry time, whatever any replica does meanwhile, since a key's time
// only moves forward. Refusing such requests locally spares the store a
// round trip per request from a client that ignores Retry-After.
type overLimit struct {
	shards   [overShards]overShard
	seed     maphash.Seed
	perShard int
	now      func() int64
}

type overShard struct {
	mu    sync.Mutex
	until map[string]overEntry
}

// overEntry is a refusal: requests of at least cost are refused until until
// (unix nanoseconds, this process's clock).
type overEntry struct {
	until   int64
	cost    int64
	resetAt int64 // when the bucket is full again
}

func newOverLimit(maxKeys int, now func() int64) *overLimit {
	o := &overLimit{seed: maphash.MakeSeed(), perShard: max(1, maxKeys/overShards), now: now}
	for i := range o.shards {
		o.shards[i].until = make(map[string]overEntry)
	}
	return o
}

func (o *overLimit) shard(key string) *overShard {
	return &o.shards[maphash.String(o.seed, key)%overShards]
}

// check returns a refusal when one of the keys is known to refuse its limit now.
func (o *overLimit) check(limits []Limit, keys []string) (Result, bool) {
	now := o.now()
	for i, key := range keys {
		s := o.shard(key)
		s.mu.Lock()
		e, ok := s.until[key]
		if ok && e.until <= now {
			delete(s.until, key)
			ok = false
		}
		s.mu.Unlock()
		if ok && limits[i].Cost >= e.cost {
			return refusedLocally(limits, i, time.Duration(e.until-now), time.Duration(e.resetAt-now)), true
		}
	}
	return Result{}, false
}

// refusedLocally is the result for a request refused by limit i without
// asking the store; the other limits were not asked and show as allowed.
func refusedLocally(limits []Limit, i int, retry, reset time.Duration) Result {
	res := Result{Local: true, Statuses: make([]Status, len(limits))}
	for j, l := range limits {
		res.Statuses[j] = Status{Limit: l, Allowed: j != i, Remaining: l.Burst}
	}
	res.Statuses[i].RetryAfter = retry
	res.Statuses[i].Remaining = 0
	res.Statuses[i].Reset = max(reset, retry)
	return res
}

// remember records the limits that refused res until their retry time.
func (o *overLimit) remember(res Result, keys []string) {
	if res.Allowed {
		return
	}
	now := o.now()
	for i, st := range res.Statuses {
		if st.Allowed || st.RetryAfter <= 0 {
			continue
		}
		s := o.shard(keys[i])
		s.mu.Lock()
		if len(s.until) >= o.perShard {
			s.dropSome(now)
		}
		s.until[keys[i]] = overEntry{until: now + int64(st.RetryAfter), cost: st.Limit.Cost, resetAt: now + int64(st.Reset)}
		s.mu.Unlock()
	}
}

// dropSome frees room in a full shard: the expired entries among a few it
// looks at, else the first of them (forgetting a refusal only costs a round
// trip). It never walks the whole map.
func (s *overShard) dropSome(now int64) {
	n, first := 0, ""
	for k, e := range s.until {
		if n == 0 {
			first = k
		}
		if e.until <= now {
			delete(s.until, k)
			first = ""
		}
		if n++; n >= 8 {
			break
		}
	}
	if first != "" {
		delete(s.until, first)
	}
}
