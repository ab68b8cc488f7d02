package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/ratelimit"
)

func TestParseRateLimits(t *testing.T) {
	v := regoValue(t, `{"allowed": true, "rate_limits": [
		{"name": "per-user", "key": "alice", "requests": 100, "per": "1m", "burst": 20},
		{"name": "tenant-quota", "key": "acme", "requests": 10000, "per": "24h", "cost": 5},
		{"name": "per-address", "key": "203.0.113.7", "requests": 5, "per": "1s", "cost": 0}
	]}`)
	got, err := parseDecision(v)
	if err != nil {
		t.Fatal(err)
	}
	want := []ratelimit.Limit{
		{Name: "per-user", Key: "alice", Requests: 100, Per: time.Minute, Burst: 20, Cost: 1},
		{Name: "tenant-quota", Key: "acme", Requests: 10000, Per: 24 * time.Hour, Burst: 10000, Cost: 5},
		{Name: "per-address", Key: "203.0.113.7", Requests: 5, Per: time.Second, Burst: 5, Cost: 0},
	}
	if !reflect.DeepEqual(got.RateLimits, want) {
		t.Errorf("got  %+v\nwant %+v", got.RateLimits, want)
	}
}

func TestParseRateLimitsMalformed(t *testing.T) {
	for _, tc := range []struct{ limits, want string }{
		{`{"name": "x"}`, "want an array"},
		{`[1]`, "[0]: is a number: want an object"},
		{`[{"key": "k", "requests": 1, "per": "1s"}]`, "name is null"},
		{`[{"name": "", "key": "k", "requests": 1, "per": "1s"}]`, "want 1 to 64 characters"},
		{`[{"name": "é", "key": "k", "requests": 1, "per": "1s"}]`, "printable ASCII"},
		{`[{"name": "n", "requests": 1, "per": "1s"}]`, "key is null"},
		{`[{"name": "n", "key": 7, "requests": 1, "per": "1s"}]`, "key is a number"},
		{`[{"name": "n", "key": "k", "per": "1s"}]`, "requests null"},
		{`[{"name": "n", "key": "k", "requests": 0, "per": "1s"}]`, "requests 0"},
		{`[{"name": "n", "key": "k", "requests": 1.5, "per": "1s"}]`, "requests 1.5"},
		{`[{"name": "n", "key": "k", "requests": "10", "per": "1s"}]`, `requests "10"`},
		{`[{"name": "n", "key": "k", "requests": 1}]`, "per is null"},
		{`[{"name": "n", "key": "k", "requests": 1, "per": 60}]`, "per is a number"},
		{`[{"name": "n", "key": "k", "requests": 1, "per": "1 minute"}]`, `per "1 minute"`},
		{`[{"name": "n", "key": "k", "requests": 1, "per": "-1s"}]`, `per "-1s"`},
		{`[{"name": "n", "key": "k", "requests": 1, "per": "1s", "burst": 0}]`, "burst 0"},
		{`[{"name": "n", "key": "k", "requests": 1, "per": "1s", "cost": -1}]`, "cost -1"},
		{`[{"name": "n", "key": "k", "requests": 5, "per": "1s", "cost": 6}]`, "could never pass"},
		{`[{"name": "n", "key": "k", "requests": 5, "per": "1s", "request": 6}]`, `unknown key "request"`},
		{`[{"name": "n", "key": "k", "requests": 5, "per": "1s"}, {"name": "n", "key": "j", "requests": 5, "per": "1s"}]`, `name "n" used twice`},
		{`[{"name": "n", "key": "k", "requests": 10000000, "per": "1s"}]`, "one per microsecond"},
		{`[` + strings.Repeat(`{"name": "n", "key": "k", "requests": 1, "per": "1s"},`, 8) + `{"name": "m", "key": "k", "requests": 1, "per": "1s"}]`, "at most 8"},
	} {
		v := regoValue(t, `{"allowed": true, "rate_limits": `+tc.limits+`}`)
		_, err := parseDecision(v)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "policy decision: rate_limits") {
			t.Errorf("%s: error %v; want one about rate_limits containing %q", tc.limits, err, tc.want)
		}
	}
}
