package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit"
)

// redisStore keeps the set in one Redis hash, <key_prefix>revocations, field
// = revocation ID, value = the revocation as JSON. Lapsed fields are deleted
// on load. Every change is announced on the pub/sub channel of the same
// name (channels and keys are separate namespaces in Redis); the message is
// the revocation ID, and receivers reload the whole hash, which is small and
// makes the order of messages irrelevant.
//
// In a Redis Cluster the hash lives on the shard of its slot, and the
// changes go over sharded pub/sub (SPUBLISH, SSUBSCRIBE; Redis 7): the
// channel has the hash's name, so it is served by the same shard, and
// messages do not cross the cluster bus to every node. When that shard's
// node restarts or fails over, the subscription breaks; watch subscribes
// again and reloads the whole set.
type redisStore struct {
	client  rueidis.Client
	hash    string
	channel string
	sharded bool
	// wait is wait_replicas: a change is confirmed once this many replicas
	// have it, so a failover cannot bring a revoked token back.
	wait        int64
	waitTimeout time.Duration
}

// minRevocationWait is the shortest wait for replicas on a change: changes
// are rare admin calls, worth more patience than a Check's use.
const minRevocationWait = time.Second

// retryReceive is the pause before subscribing again after the
// subscription broke and rueidis gave up on it.
const retryReceive = 500 * time.Millisecond

// newRedis connects to cfg's Redis with a client of its own, so the
// subscription does not share a connection with the use-limit counts.
func newRedis(cfg config.Redis) (*redisStore, error) {
	client, err := uselimit.NewRedisClient(cfg, "tokenwise-revocations")
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	name := cfg.KeyPrefix + "revocations"
	return &redisStore{client: client, hash: name, channel: name, sharded: cfg.Mode == config.RedisCluster,
		wait: int64(cfg.WaitReplicas), waitTimeout: max(cfg.WaitTimeout, minRevocationWait)}, nil
}

// put stores r and announces it.
func (r *redisStore) put(ctx context.Context, rev Revocation) error {
	value, err := json.Marshal(rev)
	if err != nil {
		return err
	}
	return r.write(ctx, rev.ID, r.client.B().Hset().Key(r.hash).FieldValue().FieldValue(rev.ID, string(value)).Build())
}

// remove deletes the revocation with id and announces it.
func (r *redisStore) remove(ctx context.Context, id string) (bool, error) {
	n, err := r.client.Do(ctx, r.client.B().Hdel().Key(r.hash).Field(id).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("revoke: redis: %w", err)
	}
	return n > 0, r.publish(ctx, id)
}

// write runs cmd, then publishes id so every replica reloads. With
// wait_replicas, cmd and a WAIT go out together on one connection, and too
// few acknowledgements are an error once the change is announced.
func (r *redisStore) write(ctx context.Context, id string, cmd rueidis.Completed) error {
	if r.wait == 0 {
		if err := r.client.Do(ctx, cmd).Error(); err != nil {
			return fmt.Errorf("revoke: redis: %w", err)
		}
		return r.publish(ctx, id)
	}
	timeout := r.waitTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)-10*time.Millisecond)
	}
	wait := r.client.B().Wait().Numreplicas(r.wait).Timeout(max(timeout.Milliseconds(), 1)).Build()
	res := r.client.DoMulti(ctx, cmd, wait)
	if err := res[0].Error(); err != nil {
		return fmt.Errorf("revoke: redis: %w", err)
	}
	if err := r.publish(ctx, id); err != nil {
		return err
	}
	acks, err := res[1].AsInt64()
	switch {
	case err != nil:
		return fmt.Errorf("revoke: redis WAIT: %w", err)
	case acks < r.wait:
		return fmt.Errorf("revoke: stored on the master, but only %d of %d replicas acknowledged it in %v (wait_replicas): a failover now could lose it", acks, r.wait, timeout)
	}
	return nil
}

func (r *redisStore) publish(ctx context.Context, id string) error {
	cmd := r.client.B().Publish().Channel(r.channel).Message(id).Build()
	if r.sharded {
		cmd = r.client.B().Spublish().Channel(r.channel).Message(id).Build()
	}
	if err := r.client.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("revoke: redis publish: %w", err)
	}
	return nil
}

// load reads the whole hash, returns what is in force and deletes what lapsed.
func (r *redisStore) load(ctx context.Context, now time.Time) ([]Revocation, error) {
	fields, err := r.client.Do(ctx, r.client.B().Hgetall().Key(r.hash).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("revoke: redis: %w", err)
	}
	out := make([]Revocation, 0, len(fields))
	var lapsed []string
	for id, value := range fields {
		var rev Revocation
		if err := json.Unmarshal([]byte(value), &rev); err != nil || rev.ID != id {
			continue // not ours to interpret; never let one bad field hide the rest
		}
		if !rev.Until.After(now) {
			lapsed = append(lapsed, id)
			continue
		}
		out = append(out, rev)
	}
	if len(lapsed) > 0 {
		// Best effort: a lapsed field is ignored on load anyway.
		_ = r.client.Do(ctx, r.client.B().Hdel().Key(r.hash).Field(lapsed...).Build()).Error()
	}
	return out, nil
}

// watch subscribes to the channel until ctx ends and calls changed on every
// message and every time the subscription is confirmed: at the start and
// after each reconnect, a replica reloads whatever it missed meanwhile.
func (r *redisStore) watch(ctx context.Context, changed func()) {
	ctx = rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "subscribe" || s.Kind == "ssubscribe" {
			changed()
		}
	})
	for ctx.Err() == nil {
		_ = r.client.Receive(ctx, r.subscribe(), func(rueidis.PubSubMessage) { changed() })
		select {
		case <-ctx.Done():
		case <-time.After(retryReceive):
		}
	}
}

// subscribe is a fresh SUBSCRIBE (SSUBSCRIBE in a cluster) to the channel:
// rueidis recycles a completed command, so each Receive needs its own.
func (r *redisStore) subscribe() rueidis.Completed {
	if r.sharded {
		return r.client.B().Ssubscribe().Channel(r.channel).Build()
	}
	return r.client.B().Subscribe().Channel(r.channel).Build()
}

func (r *redisStore) close() { r.client.Close() }
