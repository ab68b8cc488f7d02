// Package ratelimit enforces the rate limits a policy decision carries: for
// each limit (a name, a key such as the subject, and a rate), GCRA decides
// whether this request may pass now, in a store shared by every replica
// (Redis) or by one process (memory). Every limit of one request is checked
// and taken in one atomic step: a request refused by any of its limits takes
// nothing from any of them.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit is one rate limit a request counts against: Requests per Per,
// sustained, with up to Burst at once; the request takes Cost of it.
type Limit struct {
	// Name names the limit in headers, logs and metrics.
	Name string
	// Key is what is counted (a subject, a client id, an address). Stores
	// keep a hash of Name and Key, never Key itself.
	Key string
	// Requests per Per is the sustained rate.
	Requests int64
	Per      time.Duration
	// Burst is how many may pass at once (the policy's default: Requests).
	Burst int64
	// Cost is what this request takes (the policy's default: 1).
	Cost int64
}

// Bounds on a limit's numbers, so that every product the stores compute fits
// in an int64 of nanoseconds (and a float64 of microseconds in Redis).
const (
	// MaxPer is the longest period a limit may have.
	MaxPer = 366 * 24 * time.Hour
	// MinInterval is the shortest time one request's worth may take to come
	// back (Per/Requests): Redis counts in microseconds.
	MinInterval = time.Microsecond
	// MaxCount bounds requests, burst and cost.
	MaxCount = 1_000_000_000
	// maxTolerance bounds Burst × Per/Requests: how far ahead a bucket may run.
	maxTolerance = 10 * MaxPer
)

// Interval is the time one request's worth takes to come back: Per/Requests.
func (l Limit) Interval() time.Duration { return l.Per / time.Duration(l.Requests) }

// tolerance is how far ahead of now a key's time may be: Burst intervals.
func (l Limit) tolerance() time.Duration { return l.Interval() * time.Duration(l.Burst) }

// Validate reports why l cannot be enforced, or nil.
func (l Limit) Validate() error {
	switch {
	case l.Name == "":
		return errors.New("name is required")
	case l.Requests < 1 || l.Requests > MaxCount:
		return fmt.Errorf("requests %d: want 1 to %d", l.Requests, MaxCount)
	case l.Per <= 0 || l.Per > MaxPer:
		return fmt.Errorf("per %s: want a positive duration up to %s", l.Per, MaxPer)
	case l.Interval() < MinInterval:
		return fmt.Errorf("%d requests per %s is more than one per microsecond", l.Requests, l.Per)
	case l.Burst < 1 || l.Burst > MaxCount:
		return fmt.Errorf("burst %d: want 1 to %d", l.Burst, MaxCount)
	case l.Interval() > maxTolerance/time.Duration(l.Burst):
		return fmt.Errorf("burst %d of %d per %s runs further ahead than %s", l.Burst, l.Requests, l.Per, maxTolerance)
	case l.Cost < 0 || l.Cost > l.Burst:
		return fmt.Errorf("cost %d: want 0 to burst (%d); a larger cost could never pass", l.Cost, l.Burst)
	}
	return nil
}

// Status is where one limit stands after a request.
type Status struct {
	Limit Limit
	// Allowed is false when this limit refused the request.
	Allowed bool
	// Remaining is how many more requests of cost 1 would pass right now.
	Remaining int64
	// RetryAfter is how long until the refused request would pass (0 when allowed).
	RetryAfter time.Duration
	// Reset is how long until the limit is back to its full burst.
	Reset time.Duration
}

// Result is the outcome of one request against all its limits.
type Result struct {
	// Allowed is true when every limit let the request pass (and so it was
	// taken from all of them).
	Allowed bool
	// Statuses are the limits' states, in the order the limits were given.
	Statuses []Status
	// Local is true when the request was refused without asking the shared
	// store: a limit was known to be exhausted until a later time.
	Local bool
}

// Refused is the status the refusal is reported with: of the limits that
// refused, the one that makes the client wait longest. ok is false when the
// request was allowed.
func (r Result) Refused() (s Status, ok bool) {
	for _, st := range r.Statuses {
		if !st.Allowed && (!ok || st.RetryAfter > s.RetryAfter) {
			s, ok = st, true
		}
	}
	return s, ok
}

// Closest is the status of the limit closest to exhaustion: the fewest
// remaining requests (the longer reset on a tie). ok is false without limits.
func (r Result) Closest() (s Status, ok bool) {
	for _, st := range r.Statuses {
		if !ok || st.Remaining < s.Remaining || st.Remaining == s.Remaining && st.Reset > s.Reset {
			s, ok = st, true
		}
	}
	return s, ok
}

// Store checks and takes rate limits. Implementations are safe for concurrent use.
type Store interface {
	// Take checks every limit for one request and, when all of them allow
	// it, takes Cost from each in the same atomic step; when any refuses,
	// it takes nothing. The limits must be valid and their names distinct.
	// An error means the store could not be asked; the caller decides.
	Take(ctx context.Context, limits []Limit) (Result, error)
	// Close releases the store's resources.
	Close() error
}
