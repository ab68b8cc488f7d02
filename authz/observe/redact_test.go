package observe

import (
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	in := `{"authorization": "Basic dTpw", "cookie": "session=abc; x=\"y\"", "dpop": "` + jwt + `", "x": "Bearer abc.def", "y": "dpop	q+/=="} ` + jwt
	got := Scrub(in)
	for _, secret := range []string{"dTpw", "session=abc", "eyJ", "abc.def", "q+/="} {
		if strings.Contains(got, secret) {
			t.Errorf("Scrub kept %q: %s", secret, got)
		}
	}
	if keep := `{"path": "/orders", "user": "alice"}`; Scrub(keep) != keep {
		t.Errorf("Scrub changed harmless text: %s", Scrub(keep))
	}
}
