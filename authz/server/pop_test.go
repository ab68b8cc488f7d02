package server

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/request"
)

func TestNoTokenChallenge(t *testing.T) {
	for _, tc := range []struct {
		modes []string
		want  string
	}{
		{[]string{"optional", ""}, ""},
		{[]string{"required"}, `DPoP realm="tokenwise", algs="ES256"`},
		{[]string{"required", "optional"}, `Bearer realm="tokenwise", DPoP realm="tokenwise", algs="ES256"`},
	} {
		cfg := config.Default()
		for i, mode := range tc.modes {
			cfg.Issuers = append(cfg.Issuers, config.Issuer{Name: string(rune('a' + i)), ProofOfPossession: mode, DPoPAlgorithms: []string{"ES256"}})
		}
		st, err := newPoPStage(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.noToken != tc.want {
			t.Errorf("%v: challenge %q; want %q", tc.modes, st.noToken, tc.want)
		}
		st.close()
	}
}

func TestPoPRequestAuthority(t *testing.T) {
	for _, tc := range []struct {
		req  request.Request
		want string
	}{
		{request.Request{Authority: "a.example", Headers: map[string]string{"host": "b.example"}}, "a.example"},
		{request.Request{Headers: map[string]string{":authority": "c.example", "host": "b.example"}}, "c.example"},
		{request.Request{Headers: map[string]string{"host": "b.example"}}, "b.example"},
	} {
		if got := popRequest(&tc.req).Authority; got != tc.want {
			t.Errorf("authority %q; want %q", got, tc.want)
		}
	}
}
