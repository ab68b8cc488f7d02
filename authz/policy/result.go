package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenwise/tokenwise/authz/headername"
)

// errUndefined is returned when the query has no value for the input.
var errUndefined = errors.New("policy decision is undefined")

// parseDecision turns the query's value into a Decision: a boolean, or an
// object with OPA-Envoy's keys plus one_time_use, max_uses and reason.
func parseDecision(v any) (Decision, error) {
	switch x := v.(type) {
	case bool:
		return Decision{Allowed: x}, nil
	case map[string]any:
		return parseObject(x)
	}
	return Decision{}, fmt.Errorf("policy decision is %s: want a boolean or an object", typeName(v))
}

func parseObject(obj map[string]any) (Decision, error) {
	allowed, ok := obj["allowed"].(bool)
	if !ok {
		return Decision{}, fmt.Errorf("policy decision: allowed is %s: want a boolean", typeName(obj["allowed"]))
	}
	d := Decision{Allowed: allowed}
	// Sorted, so the first fault reported is always the same one.
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		if err := parseKey(&d, key, obj[key]); err != nil {
			return Decision{}, fmt.Errorf("policy decision: %s: %w", key, err)
		}
	}
	return d, nil
}

// parseKey reads one key of an object decision. Keys tokenwise does not know
// are ignored, as OPA-Envoy ignores them, so its policies work unchanged.
func parseKey(d *Decision, key string, v any) (err error) {
	switch key {
	case "headers":
		d.Headers, err = headerList(v, true)
	case "request_headers_to_remove":
		d.RequestHeadersToRemove, err = nameList(v, true)
	case "response_headers_to_add":
		d.ResponseHeadersToAdd, err = headerList(v, true)
	case "query_parameters_to_set":
		d.QueryParametersToSet, err = headerList(v, false)
	case "query_parameters_to_remove":
		d.QueryParametersToRemove, err = nameList(v, false)
	case "http_status":
		d.HTTPStatus, err = httpStatus(v)
	case "body":
		d.Body, err = bodyText(v)
	case "dynamic_metadata":
		var ok bool
		if d.DynamicMetadata, ok = v.(map[string]any); !ok {
			err = fmt.Errorf("is %s: want an object", typeName(v))
		}
	case "one_time_use":
		once, ok := v.(bool)
		if !ok {
			return fmt.Errorf("is %s: want a boolean", typeName(v))
		}
		if once {
			d.MaxUses = 1 // max_uses 1, the smallest limit there is
		}
	case "max_uses":
		n, ok := integer(v)
		if !ok || n <= 0 {
			return fmt.Errorf("%s: want a positive integer", jsonText(v))
		}
		if d.MaxUses == 0 || n < d.MaxUses { // both given: the smaller wins
			d.MaxUses = n
		}
	case "rate_limits":
		d.RateLimits, err = rateLimits(v)
	case "reason":
		var ok bool
		if d.Reason, ok = v.(string); !ok {
			err = fmt.Errorf("is %s: want a string", typeName(v))
		}
	}
	return err
}

// headerList parses an object of name → string or array of strings; an
// array gives one entry per value. Header names are lowercased (HTTP names
// are case-insensitive and Envoy keeps them lowercase); the list is sorted by
// name, values of one name keeping their order.
func headerList(v any, header bool) ([]Header, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s: want an object", typeName(v))
	}
	var out []Header
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		key, err := checkName(name, header)
		if err != nil {
			return nil, err
		}
		values, err := stringValues(obj[name])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		for _, value := range values {
			if strings.ContainsAny(value, "\r\n\x00") {
				return nil, fmt.Errorf("%q: value has a control character", name)
			}
			out = append(out, Header{Name: key, Value: value})
		}
	}
	// Lowercasing can reorder names that differed only in case.
	slices.SortStableFunc(out, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func stringValues(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("array holds %s: want strings", typeName(e))
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("is %s: want a string or an array of strings", typeName(v))
}

// nameList parses an array of names, sorted for determinism.
func nameList(v any, header bool) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("is %s: want an array of strings", typeName(v))
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("array holds %s: want strings", typeName(e))
		}
		name, err := checkName(s, header)
		if err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// checkName refuses names Envoy would reject or that could split a header
// line; header names are lowercased and must also pass headername.Check
// (no pseudo-header, host, hop-by-hop or framing header). A refused name
// fails the decision (a 500 deny, logged with the name), on allow and deny
// answers alike.
func checkName(name string, header bool) (string, error) {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r < 0x20 || r == 0x7f || (header && r == ' ')
	}) {
		return "", fmt.Errorf("%q is not a valid name", name)
	}
	if !header {
		return name, nil
	}
	if err := headername.Check(name); err != nil {
		return "", fmt.Errorf("%w, which a policy may not set or remove", err)
	}
	return strings.ToLower(name), nil
}

func httpStatus(v any) (int, error) {
	n, ok := integer(v)
	if !ok || n < 100 || n > 599 {
		return 0, fmt.Errorf("%s is not an HTTP status (100-599)", jsonText(v))
	}
	return int(n), nil
}

// bodyText takes a string as is and JSON-encodes an object or array.
func bodyText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case map[string]any, []any:
		bs, err := json.Marshal(x)
		return string(bs), err
	}
	return "", fmt.Errorf("is %s: want a string or an object", typeName(v))
}

// integer reads a whole number from a decoded JSON value (OPA gives json.Number).
func integer(v any) (int64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n, true
		}
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	case float64:
		f = x
	case int:
		return int64(x), true
	case int64:
		return x, true
	default:
		return 0, false
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null (or missing)"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonText(v any) string {
	bs, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(bs)
}
