package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// newVerifier builds a Verifier over cfgs and closes it when the test ends.
func newVerifier(t testing.TB, cfgs ...config.Issuer) *Verifier {
	t.Helper()
	v, err := New(cfgs, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// readyVerifier builds a Verifier over one issuer and waits for its JWKS.
func readyVerifier(t testing.TB, cfgs ...config.Issuer) *Verifier {
	t.Helper()
	v := newVerifier(t, cfgs...)
	waitFor(t, "verifier ready", v.Ready)
	return v
}

// waitFor polls cond for up to 10s; it bounds a wait, it does not time anything.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustVerify(t testing.TB, v *Verifier, raw string) *Token {
	t.Helper()
	tok, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: unexpected error %v", err)
	}
	return tok
}

// wantReason asserts Verify refuses raw with a *Error of the given reason.
func wantReason(t testing.TB, v *Verifier, raw, reason string) *Error {
	t.Helper()
	return wantReasonCtx(t, context.Background(), v, raw, reason)
}

func wantReasonCtx(t testing.TB, ctx context.Context, v *Verifier, raw, reason string) *Error {
	t.Helper()
	tok, err := v.Verify(ctx, raw)
	if err == nil {
		t.Fatalf("Verify accepted a token that should fail with %q (claims %v)", reason, tok.Claims)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify error %T %v is not *Error", err, err)
	}
	if e.Reason != reason {
		t.Fatalf("reason = %q (%q), want %q", e.Reason, e.Description, reason)
	}
	if e.Description == "" {
		t.Fatalf("reason %q has no description", reason)
	}
	return e
}

// issuerCfg is the test issuer's config with a zero leeway unless changed.
func issuerCfg(iss *verifytest.Issuer, name string, edit func(*config.Issuer)) config.Issuer {
	cfg := iss.Config(name)
	cfg.Leeway = 0
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}
