package answer

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/ratelimit"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// RateLimited is 429 for a request a rate limit refused: Retry-After (whole
// seconds until it would pass), the limit's RateLimit-Policy and RateLimit
// headers, and a JSON body naming the limit. No challenge: the token is fine.
func RateLimited(st ratelimit.Status) reply.Reply {
	headers := append([]policy.Header{{Name: "retry-after", Value: strconv.FormatInt(ceilSeconds(st.RetryAfter, 1), 10)}}, RateLimitHeaders(st)...)
	description := fmt.Sprintf("rate limit %q exceeded", st.Limit.Name)
	return deny(http.StatusTooManyRequests, "", reply.ErrRateLimited, description, policy.Decision{Headers: headers})
}

// RateLimitHeaders are the RateLimit-Policy and RateLimit fields of the IETF
// httpapi draft (draft-ietf-httpapi-ratelimit-headers) for one limit, as
// structured-field lists of one item each: `"per-user";q=100;w=60` (quota
// and window in seconds) and `"per-user";r=0;t=7` (remaining, and seconds
// until the quota is whole again).
func RateLimitHeaders(st ratelimit.Status) []policy.Header {
	p := httpsfv.NewItem(st.Limit.Name)
	p.Params.Add("q", st.Limit.Requests)
	p.Params.Add("w", ceilSeconds(st.Limit.Per, 1))
	r := httpsfv.NewItem(st.Limit.Name)
	r.Params.Add("r", st.Remaining)
	r.Params.Add("t", ceilSeconds(st.Reset, 0))
	pv, err1 := httpsfv.Marshal(httpsfv.List{p})
	rv, err2 := httpsfv.Marshal(httpsfv.List{r})
	if err1 != nil || err2 != nil {
		// Names are validated as printable ASCII, which a structured-field
		// string holds; should one not be, the headers are left out rather
		// than sent malformed.
		return nil
	}
	return []policy.Header{{Name: "ratelimit-policy", Value: pv}, {Name: "ratelimit", Value: rv}}
}

// ceilSeconds rounds d up to whole seconds, and to at least least.
func ceilSeconds(d time.Duration, least int64) int64 {
	return max(least, int64((d+time.Second-1)/time.Second))
}
