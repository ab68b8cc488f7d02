package uselimit

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/verify"
)

func TestKeyUsesJTI(t *testing.T) {
	tok := &verify.Token{Issuer: "corp", ID: "abc-123", ContentHash: sha256.Sum256([]byte("h.p"))}
	if got, want := Key(tok), "corp:jti:abc-123"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
}

func TestKeyWithoutJTIUsesContentHash(t *testing.T) {
	sum := sha256.Sum256([]byte("header.payload"))
	tok := &verify.Token{Issuer: "corp", ContentHash: sum}
	if got, want := Key(tok), "corp:sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	other := &verify.Token{Issuer: "corp", ContentHash: sha256.Sum256([]byte("header.other"))}
	if Key(tok) == Key(other) {
		t.Fatal("different signed content gave the same key")
	}
}

func TestKeySameJTIUnderTwoIssuersDiffers(t *testing.T) {
	a := &verify.Token{Issuer: "corp", ID: "same"}
	b := &verify.Token{Issuer: "partner", ID: "same"}
	if Key(a) == Key(b) {
		t.Fatalf("both issuers got key %q", Key(a))
	}
}

func TestKeyJTIAndHashNeverCollide(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	hashed := &verify.Token{Issuer: "corp", ContentHash: sum}
	// A jti spelled like the hash part still lands in the jti namespace.
	spoof := &verify.Token{Issuer: "corp", ID: hex.EncodeToString(sum[:])}
	if Key(hashed) == Key(spoof) {
		t.Fatal("a jti collided with a content-hash key")
	}
}

func TestTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		tok  verify.Token
		max  time.Duration
		want time.Duration
	}{
		{"until exp", verify.Token{Expiry: now.Add(10 * time.Minute)}, time.Hour, 10 * time.Minute},
		{"plus leeway", verify.Token{Expiry: now.Add(10 * time.Minute), Leeway: 30 * time.Second}, time.Hour, 10*time.Minute + 30*time.Second},
		{"exp beyond max_ttl is kept", verify.Token{Expiry: now.Add(48 * time.Hour)}, time.Hour, 48 * time.Hour},
		{"no exp uses max_ttl", verify.Token{}, 24 * time.Hour, 24 * time.Hour},
		{"no exp ignores leeway", verify.Token{Leeway: time.Minute}, time.Hour, time.Hour},
		{"expired within leeway gets the minimum", verify.Token{Expiry: now.Add(-time.Second), Leeway: 1500 * time.Millisecond}, time.Hour, MinTTL},
		{"already past", verify.Token{Expiry: now.Add(-time.Hour)}, time.Hour, MinTTL},
		{"exactly now", verify.Token{Expiry: now}, time.Hour, MinTTL},
		{"zero max_ttl", verify.Token{}, 0, MinTTL},
		{"exp centuries away", verify.Token{Expiry: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, time.Hour, MaxTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TTL(&tt.tok, now, tt.max); got != tt.want {
				t.Fatalf("TTL = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCeilMillis(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Second: 1000, time.Second + 1: 1001, time.Millisecond - 1: 1, 0: 0,
	} {
		if got := ceilMillis(d); got != want {
			t.Errorf("ceilMillis(%v) = %d, want %d", d, got, want)
		}
	}
}
