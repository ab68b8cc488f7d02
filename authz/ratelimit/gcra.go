package ratelimit

import "time"

// step is GCRA for one limit: tat is the key's theoretical arrival time (the
// instant its bucket is full again; 0 or past when it is full) and now the
// current instant, both in nanoseconds. It returns the key's new time (tat
// unchanged when refused: a refusal takes nothing) and the limit's status.
//
// The request passes when taking Cost intervals would leave the key no more
// than Burst intervals ahead of now, so a full bucket lets Burst requests
// through at once and then one per interval: no window edges, no doubled burst.
func step(l Limit, tat, now int64) (int64, Status) {
	interval := int64(l.Interval())
	tolerance := interval * l.Burst
	if tat < now {
		tat = now
	}
	next := tat + l.Cost*interval
	ahead := next - now
	if ahead > tolerance {
		return tat, Status{
			Limit:      l,
			Remaining:  max(0, (tolerance-(tat-now))/interval),
			RetryAfter: time.Duration(ahead - tolerance),
			Reset:      time.Duration(tat - now),
		}
	}
	return next, Status{
		Limit:     l,
		Allowed:   true,
		Remaining: (tolerance - ahead) / interval,
		Reset:     time.Duration(ahead),
	}
}
