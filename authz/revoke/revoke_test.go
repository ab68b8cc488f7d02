package revoke

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
	"github.com/tokenwise/tokenwise/authz/verify"
)

func newSet(t *testing.T, cfg config.UseLimits) *Set {
	t.Helper()
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func memoryConfig() config.UseLimits { return config.UseLimits{Store: "memory"} }

func redisConfig(addr string) config.UseLimits {
	return config.UseLimits{Store: "redis", Redis: config.Redis{Address: addr, KeyPrefix: "tw-test:"}}
}

func token(issuer, jti, sub string, iat time.Time) *verify.Token {
	return &verify.Token{Issuer: issuer, ID: jti, Subject: sub, IssuedAt: iat}
}

func mustRevoked(t *testing.T, s *Set, tok *verify.Token, want bool) {
	t.Helper()
	got, err := s.Revoked(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Revoked(%s %s %s iat %v) = %v, want %v", tok.Issuer, tok.ID, tok.Subject, tok.IssuedAt, got, want)
	}
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRevokeTokenMatchesOnlyThatIssuerAndJTI(t *testing.T) {
	s := newSet(t, memoryConfig())
	ctx := context.Background()
	now := time.Now()
	mustRevoked(t, s, token("corp", "j1", "alice", now), false)
	r, err := s.RevokeToken(ctx, "corp", "j1", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "token:corp:j1" || r.Kind != KindToken {
		t.Fatalf("revocation %+v", r)
	}
	mustRevoked(t, s, token("corp", "j1", "alice", now), true)
	mustRevoked(t, s, token("corp", "j2", "alice", now), false)
	mustRevoked(t, s, token("other", "j1", "alice", now), false)
	mustRevoked(t, s, token("corp", "", "alice", now), false)
	if _, ok := s.Lookup(r.ID); !ok {
		t.Fatal("Lookup does not find the revocation")
	}
}

func TestRevokeSubjectMatchesTokensIssuedBeforeTheCutOff(t *testing.T) {
	s := newSet(t, memoryConfig())
	cutoff := time.Now().Truncate(time.Second)
	if _, err := s.RevokeSubject(context.Background(), "corp", "alice", cutoff, cutoff.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, s, token("corp", "a", "alice", cutoff.Add(-time.Second)), true)
	mustRevoked(t, s, token("corp", "b", "alice", time.Time{}), true) // no iat: nothing shows it is newer
	mustRevoked(t, s, token("corp", "c", "alice", cutoff), false)
	mustRevoked(t, s, token("corp", "d", "alice", cutoff.Add(time.Second)), false)
	mustRevoked(t, s, token("corp", "e", "bob", cutoff.Add(-time.Second)), false)
	mustRevoked(t, s, token("other", "f", "alice", cutoff.Add(-time.Second)), false)
}

// The set's clock is moved by hand: a real one would make the test depend
// on how fast the machine runs the lines between revoking and checking.
func TestRevocationsLapseAtUntil(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := New(memoryConfig(), Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	until := clock().Add(200 * time.Millisecond)
	if _, err := s.RevokeToken(context.Background(), "corp", "j1", until); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, s, token("corp", "j1", "", clock()), true)
	mu.Lock()
	now = now.Add(199 * time.Millisecond)
	mu.Unlock()
	mustRevoked(t, s, token("corp", "j1", "", clock()), true)
	mu.Lock()
	now = until
	mu.Unlock()
	mustRevoked(t, s, token("corp", "j1", "", clock()), false)
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("List after the revocation lapsed: %v %v", list, err)
	}
}

func TestRevokingAgainReplacesAndRemoveLifts(t *testing.T) {
	s := newSet(t, memoryConfig())
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	if _, err := s.RevokeSubject(ctx, "corp", "alice", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeSubject(ctx, "corp", "alice", now.Add(-time.Minute), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, s, token("corp", "", "alice", now.Add(-time.Second)), false)
	mustRevoked(t, s, token("corp", "", "alice", now.Add(-2*time.Minute)), true)
	if _, err := s.RevokeToken(ctx, "corp", "j1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "subject:corp:alice" || list[1].ID != "token:corp:j1" {
		t.Fatalf("List: %+v %v", list, err)
	}
	if found, err := s.Remove(ctx, "token:corp:j1"); err != nil || !found {
		t.Fatalf("Remove: %v %v", found, err)
	}
	mustRevoked(t, s, token("corp", "j1", "", now), false)
	if found, err := s.Remove(ctx, "token:corp:j1"); err != nil || found {
		t.Fatalf("Remove of an absent revocation: %v %v", found, err)
	}
}

func TestInvalidRevocationsAreRefused(t *testing.T) {
	s := newSet(t, memoryConfig())
	ctx := context.Background()
	future := time.Now().Add(time.Hour)
	for name, err := range map[string]error{
		"no jti":         second(s.RevokeToken(ctx, "corp", "", future)),
		"no issuer":      second(s.RevokeToken(ctx, "", "j", future)),
		"colon issuer":   second(s.RevokeToken(ctx, "a:b", "j", future)),
		"past until":     second(s.RevokeToken(ctx, "corp", "j", time.Now().Add(-time.Second))),
		"no subject":     second(s.RevokeSubject(ctx, "corp", "", time.Now(), future)),
		"no cut-off":     second(s.RevokeSubject(ctx, "corp", "alice", time.Time{}, future)),
		"subject past ∞": second(s.RevokeSubject(ctx, "corp", "alice", time.Now(), time.Now().Add(-time.Second))),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("an invalid revocation was stored: %+v", list)
	}
}

func second(_ Revocation, err error) error { return err }

func TestUnknownStoreIsAnError(t *testing.T) {
	if _, err := New(config.UseLimits{Store: "etcd"}, Options{}); err == nil {
		t.Fatal("New accepted store etcd")
	}
}

// Two replicas on one Redis: a revocation made on one reaches the other
// through pub/sub, and a replica started later loads it.
func TestRedisRevocationsReachEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newSet(t, redisConfig(srv.Addr())), newSet(t, redisConfig(srv.Addr()))
	ctx := context.Background()
	tok := token("corp", "j1", "alice", time.Now())
	if _, err := a.RevokeToken(ctx, "corp", "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustRevoked(t, a, tok, true) // the replica that took the call knows at once
	eventually(t, 5*time.Second, "replica b learns of the revocation", func() bool {
		revoked, _ := b.Revoked(tok)
		return revoked
	})
	c := newSet(t, redisConfig(srv.Addr()))
	mustRevoked(t, c, tok, true)

	if _, err := b.Remove(ctx, "token:corp:j1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "replica a learns of the removal", func() bool {
		revoked, _ := a.Revoked(tok)
		return !revoked
	})
}

// A replica whose Redis went away keeps its last set, and after the server
// is back it resubscribes and reloads, so changes made meanwhile reach it.
func TestRedisReplicaCatchesUpAfterReconnect(t *testing.T) {
	srv := redistest.Start(t)
	a := newSet(t, redisConfig(srv.Addr()))
	ctx := context.Background()
	old := token("corp", "old", "", time.Now())
	if _, err := a.RevokeToken(ctx, "corp", "old", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	mustRevoked(t, a, old, true) // the last set stays in force while the store is away
	srv.Restart()                // an empty server: as if it had failed over
	writer := newSet(t, redisConfig(srv.Addr()))
	tok := token("corp", "new", "", time.Now())
	if _, err := writer.RevokeToken(ctx, "corp", "new", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "replica a catches up after the reconnect", func() bool {
		revoked, _ := a.Revoked(tok)
		return revoked
	})
}

// A replica that starts while Redis is down cannot tell revoked tokens from
// good ones: Revoked says so until the set loads.
func TestRedisSetIsUnavailableUntilFirstLoad(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	s := newSet(t, redisConfig(srv.Addr()))
	if _, err := s.Revoked(token("corp", "j", "", time.Now())); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Revoked before any load: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	eventually(t, 10*time.Second, "the set loads once Redis is up", func() bool {
		_, err := s.Revoked(token("corp", "j", "", time.Now()))
		return err == nil
	})
}

func BenchmarkRevoked(b *testing.B) {
	s, err := New(memoryConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 1000 {
		if _, err := s.RevokeToken(ctx, "corp", fmt.Sprintf("j%d", i), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	tok := token("corp", "not-revoked", "alice", time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if revoked, _ := s.Revoked(tok); revoked {
				b.Fatal("revoked")
			}
		}
	})
}
