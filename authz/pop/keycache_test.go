package pop

import (
	"fmt"
	"testing"
)

func TestKeyCache(t *testing.T) {
	var c keyCache
	raw := []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
	a, err := c.parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.parse(raw); b != a {
		t.Fatal("the same jwk bytes were parsed twice")
	}
	if _, err := c.parse([]byte(`{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}`)); err == nil {
		t.Fatal("a private jwk passed through the cache")
	}
	for i := range keyCacheSize + 10 {
		x := b64.EncodeToString([]byte(fmt.Sprintf("%032d", i)))
		if _, err := c.parse([]byte(`{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.keys); n > keyCacheSize {
		t.Fatalf("the cache holds %d keys, more than %d", n, keyCacheSize)
	}
}
