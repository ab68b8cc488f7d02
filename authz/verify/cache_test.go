package verify

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func TestAReusedTokenIsAnsweredFromTheCache(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	raw := iss.Mint(map[string]any{"sub": "alice"})
	if first, again := mustVerify(t, v, raw), mustVerify(t, v, raw); first != again {
		t.Fatal("the second Verify of the same token did not come from the cache")
	}

	off, err := New([]config.Issuer{issuerCfg(iss, "corp", nil)}, Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	waitFor(t, "verifier ready", off.Ready)
	if mustVerify(t, off, raw) == mustVerify(t, off, raw) {
		t.Fatal("CacheSize -1 still cached")
	}
}

// A key withdrawn from the JWKS stops validating at the refresh that
// withdraws it, for tokens verified (and cached) before.
func TestAWithdrawnKeyStopsCachedTokens(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	old := iss.Mint(map[string]any{"sub": "alice"})
	mustVerify(t, v, old)
	mustVerify(t, v, old) // cached now

	iss.Rotate()                                             // the old key leaves the JWKS
	mustVerify(t, v, iss.Mint(map[string]any{"sub": "bob"})) // its unknown kid makes tokenwise refresh
	wantReason(t, v, old, ReasonUnknownKID)
}

func TestARefreshThatChangesNothingKeepsTheCache(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	keys := v.all[0].keys
	before := keys.generation.Load()
	raw := iss.Mint(map[string]any{"sub": "alice"})
	first := mustVerify(t, v, raw)
	if err := keys.fetch(); err != nil {
		t.Fatal(err)
	}
	if keys.generation.Load() != before || mustVerify(t, v, raw) != first {
		t.Fatal("an unchanged key set cleared the cache")
	}
}

func TestCacheEntriesEndWithTheToken(t *testing.T) {
	c := newCache(100)
	ks := &keySource{}
	now := time.Now()
	withExp := &Token{Expiry: now.Add(time.Minute), Leeway: 10 * time.Second}
	noExp := &Token{}
	c.put("a", withExp, ks, 0, now)
	c.put("b", noExp, ks, 0, now)
	cases := []struct {
		raw  string
		at   time.Time
		want *Token
	}{
		{"a", now.Add(time.Minute), withExp},              // expired, but within leeway
		{"a", now.Add(time.Minute + 10*time.Second), nil}, // past exp + leeway
		{"b", now.Add(maxCacheAge - time.Second), noExp},  // no exp: a bounded age
		{"b", now.Add(maxCacheAge), nil},
	}
	for _, tc := range cases {
		if got := c.get(tc.raw, tc.at); got != tc.want {
			t.Errorf("get(%s, +%v) = %v, want %v", tc.raw, tc.at.Sub(now), got, tc.want)
		}
	}
	ks.generation.Add(1)
	if c.get("a", now) != nil {
		t.Error("an entry outlived its key set")
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(64)
	ks := &keySource{}
	tok := &Token{Expiry: time.Now().Add(time.Hour)}
	for i := range 10000 {
		c.put(fmt.Sprint("token-", i), tok, ks, 0, time.Now())
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].entries)
	}
	if n > 64 {
		t.Fatalf("%d entries for a cache of 64", n)
	}
	if newCache(0) != nil || newCache(-1).get("x", time.Now()) != nil {
		t.Fatal("a cache of size 0 caches")
	}
}

func TestDerivedIsComputedOncePerVerifiedToken(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	raw := iss.Mint(map[string]any{"sub": "alice"})
	builds := 0
	build := func() any { builds++; return builds }
	type key struct{}
	for range 3 {
		if got := mustVerify(t, v, raw).Derived(key{}, build); got != 1 {
			t.Fatalf("Derived = %v, want the first build's value", got)
		}
	}
	literal := &Token{}
	literal.Derived(key{}, build)
	literal.Derived(key{}, build)
	if builds != 3 {
		t.Fatalf("%d builds, want 1 for the verified token and 2 for a literal one", builds)
	}
}
