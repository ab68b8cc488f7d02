package pop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// nonceMACSize is how many bytes of the HMAC a nonce carries: 128 bits are
// far past guessing, and keep the nonce short (32 characters).
const nonceMACSize = 16

// Nonces makes and checks server nonces (RFC 9449 §8) without any state:
// a nonce is the number of the current time slot and an HMAC of it under a
// secret every replica shares. A nonce is accepted in its own slot and the
// next, so it lives one to two slot lengths; any replica accepts what any
// other one issued, and proofs made in advance stop working when it expires.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns nonces derived from secret that rotate every period.
func NewNonces(secret string, period time.Duration) *Nonces {
	// A key of its own, so the configured secret is used for nothing else.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("tokenwise dpop nonce key"))
	if period <= 0 {
		period = DefaultNoncePeriod
	}
	return &Nonces{key: mac.Sum(nil), period: period}
}

// DefaultNoncePeriod is how often nonces rotate unless configured.
const DefaultNoncePeriod = 5 * time.Minute

// Current returns the nonce for the slot now falls in.
func (n *Nonces) Current(now time.Time) string {
	return n.forSlot(n.slot(now))
}

// Valid reports whether nonce was issued for now's slot or the one before.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+nonceMACSize {
		return false
	}
	slot := binary.BigEndian.Uint64(raw[:8])
	cur := n.slot(now)
	if slot != cur && slot+1 != cur {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(n.forSlot(slot)), []byte(nonce)) == 1
}

func (n *Nonces) slot(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.period))
}

func (n *Nonces) forSlot(slot uint64) string {
	var buf [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(buf[:8], slot)
	mac := hmac.New(sha256.New, n.key)
	mac.Write(buf[:8])
	sum := mac.Sum(buf[:8])
	return base64.RawURLEncoding.EncodeToString(sum[:8+nonceMACSize])
}
