package answer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/tokenwise/tokenwise/authz/ratelimit"
	"github.com/tokenwise/tokenwise/authz/reply"
)

func TestRateLimitedAnswer(t *testing.T) {
	st := ratelimit.Status{
		Limit:      ratelimit.Limit{Name: `per-"user"`, Key: "alice", Requests: 100, Per: time.Minute, Burst: 20, Cost: 1},
		RetryAfter: 6100 * time.Millisecond, Reset: 2 * time.Minute,
	}
	a := RateLimited(st)
	if a.Allowed || a.Status != 429 || a.Error != reply.ErrRateLimited {
		t.Fatalf("%+v, want a 429 rate_limited", a)
	}
	h := map[string]string{}
	for _, o := range a.ResponseHeaders {
		h[o.Name] = o.Value
	}
	if h["retry-after"] != "7" || h["www-authenticate"] != "" || h["content-type"] != "application/json" {
		t.Errorf("headers %v; want retry-after 7 (6.1s rounded up), JSON, no challenge", h)
	}
	p, err := httpsfv.UnmarshalList([]string{h["ratelimit-policy"]})
	if err != nil || len(p) != 1 {
		t.Fatalf("ratelimit-policy %q: %v", h["ratelimit-policy"], err)
	}
	item := p[0].(httpsfv.Item)
	q, _ := item.Params.Get("q")
	w, _ := item.Params.Get("w")
	if item.Value != `per-"user"` || q != int64(100) || w != int64(60) {
		t.Errorf("ratelimit-policy = %q", h["ratelimit-policy"])
	}
	if h["ratelimit"] != `"per-\"user\"";r=0;t=120` {
		t.Errorf("ratelimit = %q", h["ratelimit"])
	}
	var body struct{ Error, ErrorDescription string }
	_ = json.Unmarshal([]byte(a.Body), &struct {
		E *string `json:"error"`
		D *string `json:"error_description"`
	}{&body.Error, &body.ErrorDescription})
	if body.Error != "rate_limited" || body.ErrorDescription != `rate limit "per-\"user\"" exceeded` {
		t.Errorf("body %s", a.Body)
	}
}

func TestRateLimitHeadersRoundUp(t *testing.T) {
	st := ratelimit.Status{Limit: ratelimit.Limit{Name: "fast", Requests: 10, Per: 500 * time.Millisecond}, Allowed: true, Remaining: 9, Reset: 50 * time.Millisecond}
	h := RateLimitHeaders(st)
	if len(h) != 2 || h[0].Value != `"fast";q=10;w=1` || h[1].Value != `"fast";r=9;t=1` {
		t.Errorf("headers %v", h)
	}
}
