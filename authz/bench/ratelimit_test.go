package bench

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestRateLimitRedisScenarioIsAllowedEveryTime runs rate-limit-redis beside
// one-time-redis: every Check passes its (never exhausted) rate limit, so
// errors stay at zero, on a redis-server the engine starts itself.
func TestRateLimitRedisScenarioIsAllowedEveryTime(t *testing.T) {
	rep, err := Run(context.Background(), tiny("one-time-redis", "rate-limit-redis"))
	if err != nil {
		t.Fatal(err)
	}
	if why, skipped := rep.Skipped["rate-limit-redis"]; skipped {
		if os.Getenv("CI") == "true" {
			t.Fatalf("rate-limit-redis skipped in CI: %s", why)
		}
		t.Skipf("rate-limit-redis skipped: %s", why)
	}
	var ran bool
	for _, res := range rep.Scenarios {
		ran = ran || res.Scenario == "rate-limit-redis"
		if res.Checks <= 0 || res.Errors != 0 {
			t.Errorf("%s: %d checks, %d unexpected answers, first: %s", res.Scenario, res.Checks, res.Errors, res.FirstError)
		}
	}
	if !ran {
		t.Fatalf("rate-limit-redis did not run: %+v", rep.Scenarios)
	}
}

// TestSharedPolicyReadsNoPerTokenClaim keeps the per-user rate limit out of
// the policy the other scenarios share: a rule reading sub would key the
// decision cache on it, and every fresh-token scenario would miss.
func TestSharedPolicyReadsNoPerTokenClaim(t *testing.T) {
	if strings.Contains(benchPolicy, "claims") || strings.Contains(nocachePolicy, "claims") {
		t.Fatal("the shared bench policy reads a claim")
	}
	if !strings.Contains(rateLimitPolicy, "input.token.claims.sub") {
		t.Fatal("the rate-limit policy lost its per-user key")
	}
	if policyDir("redis-"+redisRateLimit) != "ratelimit" || policyDir("redis") != "policy" || policyDir("memory") != "policy" {
		t.Fatal("rate-limit-redis does not run on its own policy")
	}
}
