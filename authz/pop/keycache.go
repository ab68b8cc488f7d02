package pop

import "sync"

// keyCacheSize bounds the keys remembered. A client signs every proof with
// the same key, so a few thousand clients reuse their entry for every request.
const keyCacheSize = 4096

// keyCache remembers parsed proof keys by their jwk header's exact bytes,
// so a client's key is decoded, checked on its curve and thumbprinted once.
// The same bytes always parse to the same key, so a hit is never stale.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]*publicKey
}

// parse returns the key for raw, parsing it on a miss. Refused keys are not
// remembered: they are rare, and remembering them would let junk evict
// the keys of real clients.
func (c *keyCache) parse(raw []byte) (*publicKey, error) {
	c.mu.Lock()
	k, ok := c.keys[string(raw)]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := parseJWK(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.keys) >= keyCacheSize || c.keys == nil {
		// Dropping everything at once is simpler than LRU and costs one
		// parse per active client afterwards.
		c.keys = make(map[string]*publicKey, keyCacheSize)
	}
	c.keys[string(raw)] = k
	c.mu.Unlock()
	return k, nil
}
