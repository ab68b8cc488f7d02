package policy

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tokenwise/tokenwise/authz/ratelimit"
)

// maxRateLimits bounds the limits one decision may stack: each is a key in
// the store, so a policy cannot make one request cost unbounded work.
const maxRateLimits = 8

// maxLimitName bounds a limit's name, which goes into headers, logs and metrics.
const maxLimitName = 64

// rateLimitKeys are the keys a limit object may have.
var rateLimitKeys = []string{"burst", "cost", "key", "name", "per", "requests"}

// rateLimits parses the decision's rate_limits: an array of limit objects.
// Anything malformed is an error (the request is denied with a policy
// error), never a limit silently skipped.
func rateLimits(v any) ([]ratelimit.Limit, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("is %s: want an array of limits", typeName(v))
	}
	if len(arr) > maxRateLimits {
		return nil, fmt.Errorf("has %d limits: at most %d", len(arr), maxRateLimits)
	}
	out := make([]ratelimit.Limit, 0, len(arr))
	for i, e := range arr {
		l, err := rateLimit(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if slices.ContainsFunc(out, func(o ratelimit.Limit) bool { return o.Name == l.Name }) {
			return nil, fmt.Errorf("[%d]: name %q used twice", i, l.Name)
		}
		out = append(out, l)
	}
	return out, nil
}

func rateLimit(v any) (ratelimit.Limit, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return ratelimit.Limit{}, fmt.Errorf("is %s: want an object", typeName(v))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(rateLimitKeys, k) {
			return ratelimit.Limit{}, fmt.Errorf("unknown key %q (want %v)", k, rateLimitKeys)
		}
	}
	var l ratelimit.Limit
	var err error
	if l.Name, err = limitName(obj["name"]); err != nil {
		return l, err
	}
	if l.Key, ok = obj["key"].(string); !ok {
		return l, fmt.Errorf("key is %s: want a string", typeName(obj["key"]))
	}
	if l.Requests, err = required(obj, "requests", 1); err != nil {
		return l, err
	}
	if l.Per, err = period(obj["per"]); err != nil {
		return l, err
	}
	if l.Burst, err = optional(obj, "burst", l.Requests, 1); err != nil {
		return l, err
	}
	if l.Cost, err = optional(obj, "cost", 1, 0); err != nil {
		return l, err
	}
	if err := l.Validate(); err != nil {
		return l, fmt.Errorf("%q: %w", l.Name, err)
	}
	return l, nil
}

// limitName is a name of printable ASCII: it is sent in a structured-field
// string, which holds nothing else.
func limitName(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("name is %s: want a string", typeName(v))
	}
	if s == "" || len(s) > maxLimitName {
		return "", fmt.Errorf("name %q: want 1 to %d characters", s, maxLimitName)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", fmt.Errorf("name %q: want printable ASCII", s)
		}
	}
	return s, nil
}

// optional reads obj[key] as in required, or def when the key is absent.
func optional(obj map[string]any, key string, def, least int64) (int64, error) {
	if _, present := obj[key]; !present {
		return def, nil
	}
	return required(obj, key, least)
}

// required reads obj[key] as a whole number of at least least.
func required(obj map[string]any, key string, least int64) (int64, error) {
	v := obj[key]
	n, ok := integer(v)
	if !ok || n < least {
		return 0, fmt.Errorf("%s %s: want a whole number of at least %d", key, jsonText(v), least)
	}
	return n, nil
}

// period reads per: a duration string such as "1s", "1m", "1h" or "24h".
func period(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("per is %s: want a duration such as \"1m\"", typeName(v))
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("per %q: want a positive duration such as \"1s\", \"1m\", \"1h\" or \"24h\"", s)
	}
	return d, nil
}
