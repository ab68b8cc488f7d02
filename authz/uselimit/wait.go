package uselimit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// ErrNotReplicated is the error of a use that fewer than wait_replicas
// replicas acknowledged in time. The use may be counted on the master, but
// a failover could lose it, so it is not confirmed: on_store_error decides.
var ErrNotReplicated = errors.New("uselimit: the use was not acknowledged by enough replicas")

// defaultWaitTimeout is wait_timeout when a configuration leaves it unset.
const defaultWaitTimeout = 100 * time.Millisecond

// waitMargin is kept between WAIT's own timeout and the call's deadline, so
// WAIT's answer arrives before the deadline cuts the call off.
const waitMargin = 2 * time.Millisecond

// useScriptSHA is the SHA1 that EVALSHA names useScript by.
var useScriptSHA = func() string {
	sum := sha1.Sum([]byte(useScript))
	return hex.EncodeToString(sum[:])
}()

// useAndWait counts one use of k like Use and, when the use was counted,
// waits until r.wait replicas acknowledged it. WAIT covers the writes made
// earlier on its own connection, so the write and the WAIT go together in
// one DoMulti: rueidis sends a batch holding a blocking command (WAIT) on a
// single dedicated connection, and in a cluster to the node of the key's
// slot. A use that is refused needs no acknowledgement: refusing is safe
// whatever the replicas hold.
func (r *Redis) useAndWait(ctx context.Context, k string, limit, ms int64) (bool, error) {
	timeout, err := r.waitBudget(ctx)
	if err != nil {
		return false, err
	}
	write := r.useCommand(k, limit, ms, true)
	res := r.client.DoMulti(ctx, write, r.waitCommand(timeout))
	if limit > 1 && isNoScript(res[0].Error()) {
		// First run of the script on this server: send its text once.
		res = r.client.DoMulti(ctx, r.useCommand(k, limit, ms, false), r.waitCommand(timeout))
	}
	allowed, err := useResult(limit, res[0])
	if err != nil || !allowed {
		return false, err
	}
	acks, err := res[1].AsInt64()
	if err != nil {
		return false, fmt.Errorf("uselimit: redis WAIT: %w", err)
	}
	if acks < r.wait {
		return false, fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, acks, r.wait, timeout)
	}
	return true, nil
}

// waitBudget is how long WAIT may block: wait_timeout, but never past ctx's
// deadline (less waitMargin). No time left is an error before anything is
// written.
func (r *Redis) waitBudget(ctx context.Context) (time.Duration, error) {
	timeout := r.waitTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)-waitMargin)
	}
	if timeout < time.Millisecond {
		return 0, fmt.Errorf("%w: no time left before the deadline to wait for replicas", ErrNotReplicated)
	}
	return timeout.Truncate(time.Millisecond), nil
}

// useCommand is the write that counts one use: SET NX for one use, else the
// script, by SHA (sha) or by text.
func (r *Redis) useCommand(k string, limit, ms int64, sha bool) rueidis.Completed {
	if limit == 1 {
		return r.client.B().Set().Key(k).Value("1").Nx().PxMilliseconds(ms).Build()
	}
	args := []string{strconv.FormatInt(limit, 10), strconv.FormatInt(ms, 10)}
	if sha {
		return r.client.B().Evalsha().Sha1(useScriptSHA).Numkeys(1).Key(k).Arg(args...).Build()
	}
	return r.client.B().Eval().Script(useScript).Numkeys(1).Key(k).Arg(args...).Build()
}

// waitCommand is WAIT for r.wait replicas for at most timeout (never 0,
// which would mean forever).
func (r *Redis) waitCommand(timeout time.Duration) rueidis.Completed {
	return r.client.B().Wait().Numreplicas(r.wait).Timeout(max(timeout.Milliseconds(), 1)).Build()
}

// useResult reads the answer of useCommand: whether the use was counted.
func useResult(limit int64, res rueidis.RedisResult) (bool, error) {
	if limit == 1 {
		err := res.Error()
		switch {
		case err == nil:
			return true, nil
		case rueidis.IsRedisNil(err):
			return false, nil
		}
		return false, fmt.Errorf("uselimit: redis: %w", err)
	}
	n, err := res.AsInt64()
	if err != nil {
		return false, fmt.Errorf("uselimit: redis: %w", err)
	}
	return n == 1, nil
}

// isNoScript reports a NOSCRIPT reply: the server does not have the script yet.
func isNoScript(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOSCRIPT")
}
