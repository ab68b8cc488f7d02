package uselimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// newRedisStore opens a store on srv with cfg's other fields, closed at cleanup.
func newRedisStore(t testing.TB, srv *redistest.Server, cfg config.Redis) *Redis {
	t.Helper()
	cfg.Address = srv.Addr()
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rawClient is a plain client on srv's database db, to look behind the store.
func rawClient(t testing.TB, srv *redistest.Server, db int, password string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{srv.Addr()}, SelectDB: db, Password: password, DisableCache: true,
	})
	if err != nil {
		t.Fatalf("raw client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func rawGet(t testing.TB, c rueidis.Client, key string) (string, bool) {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", false
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v, true
}

func TestRedisLimitIsExactUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{KeyPrefix: "tw:"})
	for _, limit := range []int64{1, 4, 200} {
		key := "corp:jti:limit-" + strconv.FormatInt(limit, 10)
		ctx := context.Background()
		got := hammer(t, 200, func() (bool, error) { return r.Use(ctx, key, limit, time.Minute) })
		if got != limit {
			t.Fatalf("limit %d: allowed %d of 200 uses", limit, got)
		}
		if n, err := r.Uses(ctx, key); err != nil || n != limit {
			t.Fatalf("limit %d: Uses = %d, %v", limit, n, err)
		}
	}
}

func TestRedisOneUseThenNUseShareTheCount(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{})
	ctx := context.Background()
	if ok, err := r.Use(ctx, "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("first one-time use: %v, %v", ok, err)
	}
	// A policy that raises the limit later sees the use already counted.
	for i, want := range []bool{true, true, false} {
		if ok, err := r.Use(ctx, "k", 3, time.Minute); ok != want || err != nil {
			t.Fatalf("use %d with limit 3: %v, %v; want %v", i+2, ok, err, want)
		}
	}
	if ok, _ := r.Use(ctx, "k", 0, time.Minute); ok {
		t.Fatal("limit 0 allowed a use")
	}
	// A ttl beyond what Redis accepts is clamped, not an error.
	for _, limit := range []int64{1, 3} {
		key := "huge-" + strconv.FormatInt(limit, 10)
		if ok, err := r.Use(ctx, key, limit, time.Duration(math.MaxInt64)); !ok || err != nil {
			t.Fatalf("limit %d with a huge ttl: %v, %v", limit, ok, err)
		}
	}
}

func TestRedisSetsTTL(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{KeyPrefix: "tw:"})
	raw := rawClient(t, srv, 0, "")
	ctx := context.Background()
	const ttl = 90 * time.Second
	for _, limit := range []int64{1, 5} {
		key := "corp:jti:ttl-" + strconv.FormatInt(limit, 10)
		if ok, err := r.Use(ctx, key, limit, ttl); !ok || err != nil {
			t.Fatalf("limit %d: Use = %v, %v", limit, ok, err)
		}
		// A second use must not move the expiry.
		r.Use(ctx, key, limit, 10*ttl)
		ms, err := raw.Do(ctx, raw.B().Pttl().Key("tw:"+key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if ms <= (ttl-5*time.Second).Milliseconds() || ms > ttl.Milliseconds() {
			t.Fatalf("limit %d: PTTL = %dms, want about %v", limit, ms, ttl)
		}
	}
}

func TestRedisCountExpires(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{})
	ctx := context.Background()
	if ok, _ := r.Use(ctx, "k", 1, MinTTL); !ok {
		t.Fatal("first use denied")
	}
	redistest.Eventually(t, "count to expire", func() error {
		if n, err := r.Uses(ctx, "k"); err != nil || n != 0 {
			return errors.New("count still there")
		}
		return nil
	})
	if ok, err := r.Use(ctx, "k", 1, MinTTL); !ok || err != nil {
		t.Fatalf("use after expiry: %v, %v", ok, err)
	}
}

func TestRedisKeyPrefix(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisStore(t, srv, config.Redis{KeyPrefix: "a:"})
	b := newRedisStore(t, srv, config.Redis{KeyPrefix: "b:"})
	raw := rawClient(t, srv, 0, "")
	ctx := context.Background()
	for _, s := range []*Redis{a, b} {
		if ok, err := s.Use(ctx, "corp:jti:1", 1, time.Minute); !ok || err != nil {
			t.Fatalf("Use under its own prefix: %v, %v", ok, err)
		}
	}
	if v, ok := rawGet(t, raw, "a:corp:jti:1"); !ok || v != "1" {
		t.Fatalf("a:corp:jti:1 = %q, %v", v, ok)
	}
	if _, ok := rawGet(t, raw, "corp:jti:1"); ok {
		t.Fatal("key written without its prefix")
	}
}

func TestRedisDB(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{DB: 3})
	ctx := context.Background()
	if ok, err := r.Use(ctx, "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use: %v, %v", ok, err)
	}
	if _, ok := rawGet(t, rawClient(t, srv, 3, ""), "k"); !ok {
		t.Fatal("key not in db 3")
	}
	if _, ok := rawGet(t, rawClient(t, srv, 0, ""), "k"); ok {
		t.Fatal("key written to db 0")
	}
}

func TestRedisPassword(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	ctx := context.Background()
	good := newRedisStore(t, srv, config.Redis{Password: "s3cret"})
	if ok, err := good.Use(ctx, "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use with the password: %v, %v", ok, err)
	}
	bad := newRedisStore(t, srv, config.Redis{Password: "wrong"})
	if ok, err := bad.Use(ctx, "k2", 1, time.Minute); ok || err == nil {
		t.Fatalf("Use with a wrong password: %v, %v; want an error", ok, err)
	}
	none := newRedisStore(t, srv, config.Redis{})
	if _, err := none.Uses(ctx, "k"); err == nil {
		t.Fatal("Uses without a password succeeded")
	}
}

func TestRedisUsernameAndPassword(t *testing.T) {
	srv := redistest.Start(t, "--user", "tokenwise", "on", ">pw", "~tw:*", "+@all", "--user", "default", "off")
	ctx := context.Background()
	r := newRedisStore(t, srv, config.Redis{Username: "tokenwise", Password: "pw", KeyPrefix: "tw:"})
	if ok, err := r.Use(ctx, "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use as an ACL user: %v, %v", ok, err)
	}
	if ok, err := r.Use(ctx, "k", 3, time.Minute); !ok || err != nil {
		t.Fatalf("script as an ACL user: %v, %v", ok, err)
	}
	wrongUser := newRedisStore(t, srv, config.Redis{Username: "other", Password: "pw", KeyPrefix: "tw:"})
	if _, err := wrongUser.Use(ctx, "k3", 1, time.Minute); err == nil {
		t.Fatal("an unknown user could use the store")
	}
}

func TestRedisTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	ctx := context.Background()
	cfg := config.Redis{Address: srv.Addr(), TLS: true}
	r, err := newRedis(cfg, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, limit := range []int64{1, 3} {
		if ok, err := r.Use(ctx, "k"+strconv.FormatInt(limit, 10), limit, time.Minute); !ok || err != nil {
			t.Fatalf("limit %d over TLS: %v, %v", limit, ok, err)
		}
	}
	// The server's certificate is not in the system's trust store: refused.
	untrusted := newRedisStore(t, srv, config.Redis{TLS: true})
	if _, err := untrusted.Use(ctx, "k9", 1, time.Minute); err == nil {
		t.Fatal("TLS to an untrusted certificate succeeded")
	}
	// Plain TCP to a TLS-only server does not work either.
	plain := newRedisStore(t, srv, config.Redis{})
	if _, err := plain.Use(ctx, "k9", 1, time.Minute); err == nil {
		t.Fatal("plain connection to a TLS server succeeded")
	}
}

func TestRedisOutageReturnsErrorThenRecovers(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{})
	if ok, err := r.Use(context.Background(), "before", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use before the outage: %v, %v", ok, err)
	}
	srv.Stop()
	for _, limit := range []int64{1, 3} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		ok, err := r.Use(ctx, "during", limit, time.Minute)
		cancel()
		if ok || err == nil {
			t.Fatalf("limit %d during the outage: %v, %v; want an error", limit, ok, err)
		}
	}
	if _, err := r.Uses(context.Background(), "during"); err == nil {
		t.Fatal("Uses during the outage succeeded")
	}
	srv.Restart()
	// Same store, no new client: rueidis re-dials on its own.
	redistest.Eventually(t, "Use after restart", func() error {
		_, err := r.Use(context.Background(), "probe", 5, time.Minute)
		return err
	})
	for _, limit := range []int64{1, 3} {
		if ok, err := r.Use(context.Background(), "after", limit, time.Minute); !ok || err != nil {
			t.Fatalf("limit %d after the restart: %v, %v", limit, ok, err)
		}
	}
	// Once one call has worked, the outage is over for every call: no stale
	// connection is left to fail a later one.
	for i := range 50 {
		if _, err := r.Use(context.Background(), fmt.Sprint("steady-", i), 1, time.Minute); err != nil {
			t.Fatalf("call %d after the store recovered: %v", i, err)
		}
	}
}

func TestRedisHungServerHonoursDeadline(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{})
	ctx := context.Background()
	if _, err := r.Use(ctx, "warm", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	for _, limit := range []int64{1, 3} {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ok, err := r.Use(cctx, "hung", limit, time.Minute)
		cancel()
		if ok || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("limit %d on a hung server: %v, %v; want the deadline error", limit, ok, err)
		}
	}
	// Without a deadline of its own, a call still ends (at fallbackTimeout).
	if _, err := r.Uses(ctx, "hung"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Uses without a deadline on a hung server: %v", err)
	}
	srv.Resume()
	redistest.Eventually(t, "Use after resume", func() error {
		_, err := r.Use(ctx, "probe", 5, time.Minute)
		return err
	})
}

func TestRedisDownAtStart(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	r := newRedisStore(t, srv, config.Redis{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ok, err := r.Use(ctx, "k", 1, time.Minute); ok || err == nil {
		t.Fatalf("Use with Redis down: %v, %v; want an error", ok, err)
	}
	srv.Restart()
	redistest.Eventually(t, "Use once Redis is up", func() error {
		_, err := r.Use(context.Background(), "probe", 5, time.Minute)
		return err
	})
	if ok, err := r.Use(context.Background(), "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use once Redis is up: %v, %v", ok, err)
	}
}

func TestNewPicksStore(t *testing.T) {
	for _, store := range []string{"memory", ""} {
		s, err := New(config.UseLimits{Store: store}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*metered).Store.(*Memory); !ok {
			t.Fatalf("store %q: got %T", store, s.(*metered).Store)
		}
		s.Close()
	}
	if _, err := New(config.UseLimits{Store: "etcd"}, nil); err == nil {
		t.Fatal("unknown store accepted")
	}
}

func TestNewRedisRecordsMetrics(t *testing.T) {
	srv := redistest.Start(t)
	m := observe.NewMetrics()
	s, err := New(config.UseLimits{Store: "redis", Redis: config.Redis{Address: srv.Addr()}}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*metered).Store.(*Redis); !ok {
		t.Fatalf("got %T", s.(*metered).Store)
	}
	ctx := context.Background()
	if ok, err := s.Use(ctx, "k", 1, time.Minute); !ok || err != nil {
		t.Fatalf("Use: %v, %v", ok, err)
	}
	srv.Stop()
	if _, err := s.Use(ctx, "k2", 1, time.Minute); err == nil {
		t.Fatal("Use with Redis down succeeded")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`tokenwise_use_limit_store_errors_total{store="redis"} 1`,
		`tokenwise_use_limit_store_duration_seconds_count{store="redis"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// After a Redis restart, once one call works every call works: no stale
// connection is left to fail a later Check with a 503.
func TestRedisRestartLeavesNoStaleConnection(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, config.Redis{})
	ctx := context.Background()
	for i := range 3 {
		if _, err := r.Use(ctx, fmt.Sprint("warm-", i), 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	srv.Stop()
	if _, err := r.Use(ctx, "down", 1, time.Minute); err == nil {
		t.Fatal("Use with Redis stopped succeeded")
	}
	srv.Restart()
	redistest.Eventually(t, "Use after restart", func() error {
		_, err := r.Use(ctx, "probe", 5, time.Minute)
		return err
	})
	for i := range 50 {
		if _, err := r.Use(ctx, fmt.Sprint("after-", i), 1, time.Minute); err != nil {
			t.Fatalf("call %d after the store recovered: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond) // calls spread in time, as Checks are
	}
}
