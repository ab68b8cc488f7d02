// Package revoke is the revocation stage of the Check pipeline: the set of
// revoked tokens (by issuer name and jti) and revoked subjects (by issuer
// name and subject, for tokens issued before a cut-off).
//
// Every replica keeps the whole set in memory as an immutable snapshot, so
// asking whether a token is revoked is a map lookup with no network round
// trip. The set itself lives in the use-limit store: in memory for one
// process, or in Redis for a fleet, where each change is published on a
// pub/sub channel and every replica reloads the set when told, whenever its
// subscription is (re)established, and periodically, so a replica that was
// away catches up.
package revoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// Kind says what a Revocation matches.
type Kind string

const (
	// KindToken matches one token by issuer name and jti.
	KindToken Kind = "token"
	// KindSubject matches a subject's tokens issued before a cut-off.
	KindSubject Kind = "subject"
)

// Revocation is one revocation in force until Until.
type Revocation struct {
	// ID is TokenID or SubjectID of the revocation; revoking the same token
	// or subject again replaces the revocation with that ID.
	ID     string `json:"id"`
	Kind   Kind   `json:"kind"`
	Issuer string `json:"issuer"`
	// JTI is set for KindToken, Subject and IssuedBefore for KindSubject.
	JTI          string    `json:"jti,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	IssuedBefore time.Time `json:"issued_before,omitzero"`
	Until        time.Time `json:"until"`
	Created      time.Time `json:"created"`
}

// TokenID is the ID of the revocation of one token. Issuer names cannot hold
// ':' (see config), so IDs of different issuers never collide.
func TokenID(issuer, jti string) string { return "token:" + issuer + ":" + jti }

// SubjectID is the ID of the revocation of a subject's tokens.
func SubjectID(issuer, subject string) string { return "subject:" + issuer + ":" + subject }

// ErrUnavailable is returned by Revoked while the set has never been loaded
// from its store: the replica cannot tell a revoked token from a good one.
var ErrUnavailable = errors.New("revoke: the revocation set has not been loaded from the store")

// ErrInvalid wraps every argument error of RevokeToken and RevokeSubject.
var ErrInvalid = errors.New("revoke: invalid revocation")

// DefaultReloadInterval is how often a replica reloads the whole set from a
// shared store even when no change was announced.
const DefaultReloadInterval = 30 * time.Second

// Options adjust a Set.
type Options struct {
	// Logger receives reload failures (nil: slog.Default()).
	Logger *slog.Logger
	// ReloadInterval is the periodic full reload (0: DefaultReloadInterval).
	ReloadInterval time.Duration
	// Now is the clock revocations lapse by (nil: time.Now); tests move it.
	Now func() time.Time
}

// backend is where the set is kept. changed is called (it must not block)
// whenever the stored set may differ from the last load.
type backend interface {
	put(ctx context.Context, r Revocation) error
	remove(ctx context.Context, id string) (bool, error)
	load(ctx context.Context, now time.Time) ([]Revocation, error)
	watch(ctx context.Context, changed func())
	close()
}

// Set is the revocation set of one replica. It is safe for concurrent use.
type Set struct {
	snap    atomic.Pointer[snapshot] // nil until the first successful load
	store   backend
	logger  *slog.Logger
	every   time.Duration
	reload  chan struct{} // a pending "reload now", coalesced
	loadMu  sync.Mutex    // one load at a time, so the last one wins
	cancel  context.CancelFunc
	stopped chan struct{}
	now     func() time.Time
}

// New returns the set kept in the store cfg.Store names: "memory" (this
// process only) or "redis" (shared by every replica using cfg.Redis). A Redis
// server that is down does not fail New: the set loads once it answers, and
// until then Revoked returns ErrUnavailable.
func New(cfg config.UseLimits, opts Options) (*Set, error) {
	switch cfg.Store {
	case "memory", "":
		return start(newMemory(), opts), nil
	case "redis":
		r, err := newRedis(cfg.Redis)
		if err != nil {
			return nil, err
		}
		return start(r, opts), nil
	}
	return nil, fmt.Errorf("revoke: unknown store %q: want memory or redis", cfg.Store)
}

// start loads the set once (briefly waiting for the store) and keeps it
// current in the background.
func start(b backend, opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Set{store: b, logger: opts.Logger, every: opts.ReloadInterval, reload: make(chan struct{}, 1),
		cancel: cancel, stopped: make(chan struct{}), now: opts.Now}
	first, cancelFirst := context.WithTimeout(ctx, 2*time.Second)
	if err := s.load(first); err != nil {
		s.logger.Warn("revocation set not loaded yet; tokens are refused or allowed as on_store_error says until it is", "error", err)
	}
	cancelFirst()
	go b.watch(ctx, s.changed)
	go s.keepCurrent(ctx)
	return s
}

// changed asks for a reload without blocking; reloads asked for while one is
// pending are merged into it.
func (s *Set) changed() {
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// keepCurrent reloads on demand and periodically (every second while the
// set has never loaded) until ctx ends.
func (s *Set) keepCurrent(ctx context.Context) {
	defer close(s.stopped)
	for {
		wait := s.every
		if s.snap.Load() == nil {
			wait = time.Second
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.reload:
		case <-timer.C:
		}
		timer.Stop()
		call, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.load(call); err != nil && ctx.Err() == nil {
			s.logger.Warn("revocation set reload failed; keeping the last one", "error", err)
		}
		cancel()
	}
}

// load reads the whole set from the store and publishes it as the snapshot.
func (s *Set) load(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	all, err := s.store.load(ctx, s.now())
	if err != nil {
		return err
	}
	s.snap.Store(newSnapshot(all))
	return nil
}

// Loaded reports whether the set has been loaded from its store at least
// once. It stays true through later store outages, which keep the last set.
func (s *Set) Loaded() bool { return s.snap.Load() != nil }

// Revoked reports whether tok is revoked: by its issuer and jti, or by its
// issuer and subject when it was issued before the subject's cut-off. A
// token without iat counts as issued before any cut-off: nothing shows it is
// newer. It makes no network call. The error is ErrUnavailable while the set
// has never loaded.
func (s *Set) Revoked(tok *verify.Token) (bool, error) {
	snap := s.snap.Load()
	if snap == nil {
		return false, ErrUnavailable
	}
	if len(snap.all) == 0 {
		return false, nil // the usual case: skip even reading the clock
	}
	return snap.revoked(tok, s.now()), nil
}

// RevokeToken revokes the token with jti from the named issuer until until,
// replacing any earlier revocation of it. It returns once the store has it
// and this replica's set holds it.
func (s *Set) RevokeToken(ctx context.Context, issuer, jti string, until time.Time) (Revocation, error) {
	now := s.now()
	r := Revocation{ID: TokenID(issuer, jti), Kind: KindToken, Issuer: issuer, JTI: jti, Until: until.UTC(), Created: now.UTC()}
	if jti == "" {
		return Revocation{}, fmt.Errorf("%w: jti is empty", ErrInvalid)
	}
	return r, s.put(ctx, r, now)
}

// RevokeSubject revokes the tokens of subject from the named issuer whose
// iat is before issuedBefore, until until, replacing any earlier revocation
// of that subject.
func (s *Set) RevokeSubject(ctx context.Context, issuer, subject string, issuedBefore, until time.Time) (Revocation, error) {
	now := s.now()
	r := Revocation{ID: SubjectID(issuer, subject), Kind: KindSubject, Issuer: issuer, Subject: subject,
		IssuedBefore: issuedBefore.UTC(), Until: until.UTC(), Created: now.UTC()}
	if subject == "" || issuedBefore.IsZero() {
		return Revocation{}, fmt.Errorf("%w: subject and issued_before are required", ErrInvalid)
	}
	return r, s.put(ctx, r, now)
}

func (s *Set) put(ctx context.Context, r Revocation, now time.Time) error {
	if r.Issuer == "" || strings.Contains(r.Issuer, ":") {
		return fmt.Errorf("%w: issuer %q", ErrInvalid, r.Issuer)
	}
	if !r.Until.After(now) {
		return fmt.Errorf("%w: until %s is not in the future", ErrInvalid, r.Until.Format(time.RFC3339))
	}
	if err := s.store.put(ctx, r); err != nil {
		return err
	}
	return s.load(ctx)
}

// Remove lifts the revocation with id and reports whether there was one.
func (s *Set) Remove(ctx context.Context, id string) (bool, error) {
	found, err := s.store.remove(ctx, id)
	if err != nil {
		return false, err
	}
	return found, s.load(ctx)
}

// List returns the revocations in force, freshly loaded from the store,
// ordered by ID.
func (s *Set) List(ctx context.Context) ([]Revocation, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	var out []Revocation
	for _, r := range s.snap.Load().all {
		if r.Until.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Lookup returns the revocation with id from this replica's set, if it is in force.
func (s *Set) Lookup(id string) (Revocation, bool) {
	snap := s.snap.Load()
	if snap == nil {
		return Revocation{}, false
	}
	r, ok := snap.byID[id]
	if !ok || !r.Until.After(s.now()) {
		return Revocation{}, false
	}
	return r, true
}

// Close stops keeping the set current and releases the store's connection.
func (s *Set) Close() {
	s.cancel()
	<-s.stopped
	s.store.close()
}

// key is a map key without string concatenation, so a lookup does not allocate.
type key struct{ issuer, name string }

// cut is a subject revocation as the lookup needs it.
type cut struct{ issuedBefore, until time.Time }

// snapshot is an immutable view of the set, replaced whole on each load.
type snapshot struct {
	tokens   map[key]time.Time // until
	subjects map[key]cut
	byID     map[string]Revocation
	all      []Revocation // ordered by ID
}

func newSnapshot(all []Revocation) *snapshot {
	s := &snapshot{tokens: map[key]time.Time{}, subjects: map[key]cut{}, byID: map[string]Revocation{}}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	for _, r := range all {
		switch r.Kind {
		case KindToken:
			s.tokens[key{r.Issuer, r.JTI}] = r.Until
		case KindSubject:
			s.subjects[key{r.Issuer, r.Subject}] = cut{r.IssuedBefore, r.Until}
		default:
			continue // written by a newer version: ignore rather than guess
		}
		s.byID[r.ID] = r
		s.all = append(s.all, r)
	}
	return s
}

func (s *snapshot) revoked(tok *verify.Token, now time.Time) bool {
	if tok == nil || len(s.all) == 0 {
		return false
	}
	if tok.ID != "" {
		if until, ok := s.tokens[key{tok.Issuer, tok.ID}]; ok && now.Before(until) {
			return true
		}
	}
	if tok.Subject != "" {
		if c, ok := s.subjects[key{tok.Issuer, tok.Subject}]; ok && now.Before(c.until) {
			return tok.IssuedAt.IsZero() || tok.IssuedAt.Before(c.issuedBefore)
		}
	}
	return false
}
