package answer

import (
	"encoding/json"
	"testing"
)

// FuzzErrorBody: the hand-written deny body is what encoding/json writes.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\back`, "\x00\x01\x1f\x7f\n\r\t\b\f", "<a href='x'>&amp;</a>",
		"\u2028\u2029", "\xff\xfe invalid", "héllo wörld ✓ 🎉", "\xed\xa0\x80"} {
		f.Add("invalid_token", s)
	}
	f.Fuzz(func(t *testing.T, code, description string) {
		want, err := json.Marshal(struct {
			Error       string `json:"error"`
			Description string `json:"error_description,omitempty"`
		}{code, description})
		if err != nil {
			t.Fatal(err)
		}
		if got := errorBody(code, description); got != string(want) {
			t.Fatalf("errorBody(%q, %q)\n got %s\nwant %s", code, description, got, want)
		}
	})
}
