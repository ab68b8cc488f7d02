package policy

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tokenwise/tokenwise/authz/config"
)

// ErrBodyTooComplex is returned (wrapped) for a body the policy could read
// as input.parsed_body that has more values or deeper nesting than the
// limits allow. tokenwise refuses such a request (413) rather than parse it:
// a 1 MiB JSON array can take 100 MB as Go and Rego values.
var ErrBodyTooComplex = errors.New("request body is too complex to parse")

// BodyLimits bound what parsing one request body may cost.
type BodyLimits struct {
	// MaxBytes: a longer body is truncated, not parsed (<= 0: no cap).
	MaxBytes int
	// MaxElements and MaxDepth: a JSON body with more values or deeper
	// nesting, or a form body with more pairs, is refused (<= 0: no cap).
	MaxElements int
	MaxDepth    int
	// parses holds one slot per body parse in progress (nil: unbounded).
	parses chan struct{}
}

// defaultParses is the parse semaphore of Input's default limits.
var defaultParses = make(chan struct{}, defaultParseSlots())

func defaultParseSlots() int { return max(runtime.GOMAXPROCS(0), 2) }

// DefaultBodyLimits are the configuration's defaults with maxBytes as the
// byte cap, sharing one process-wide parse semaphore.
func DefaultBodyLimits(maxBytes int) BodyLimits {
	return BodyLimits{MaxBytes: maxBytes, MaxElements: config.DefaultMaxBodyElements, MaxDepth: config.DefaultMaxBodyDepth, parses: defaultParses}
}

// NewBodyLimits returns the limits cfg sets, with their own semaphore of
// cfg.MaxBodyParses slots (default: the number of CPUs, at least 2).
func NewBodyLimits(cfg config.Policy) BodyLimits {
	slots := cfg.MaxBodyParses
	if slots <= 0 {
		slots = defaultParseSlots()
	}
	return BodyLimits{MaxBytes: cfg.MaxBodyBytes, MaxElements: cfg.MaxBodyElements, MaxDepth: cfg.MaxBodyDepth, parses: make(chan struct{}, slots)}
}

// acquire takes a parse slot, waiting no longer than ctx.
func (l BodyLimits) acquire(ctx context.Context) (release func(), err error) {
	if l.parses == nil {
		return func() {}, nil
	}
	select {
	case l.parses <- struct{}{}:
		return func() { <-l.parses }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("request body: waiting to parse: %w", ctx.Err())
	}
}

// parseBody follows OPA-Envoy's rules for input.parsed_body and
// input.truncated_body: a JSON body (content-type containing
// application/json) becomes its value and a form body
// (application/x-www-form-urlencoded) name → array of values; the body is
// taken from body, else raw_body (pack_as_bytes). A body is truncated when
// Envoy says so (x-envoy-auth-partial-body: true), when content-length is
// larger than what Envoy sent, or when it is longer than limits.MaxBytes; a
// truncated body is not parsed. Other content types are not parsed.
//
// The cost is bounded: before any allocation a scan counts the body's
// values and nesting (over the limits: ErrBodyTooComplex), and at most
// limits' semaphore of bodies are parsed at once.
func parseBody(ctx context.Context, headers map[string]string, body string, rawBody []byte, limits BodyLimits) (ast.Value, bool, error) {
	if headers["x-envoy-auth-partial-body"] == "true" {
		return ast.NullValue, true, nil
	}
	kind := bodyKind(headers["content-type"])
	if kind == "" {
		return ast.NullValue, false, nil
	}
	if body == "" {
		body = string(rawBody)
	}
	if body == "" {
		return ast.NullValue, false, nil
	}
	if truncated, err := isTruncated(headers, len(body), limits.MaxBytes); err != nil || truncated {
		return ast.NullValue, truncated, err
	}
	if err := checkShape(kind, body, limits); err != nil {
		return nil, false, err
	}
	release, err := limits.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer release()
	if kind == "form" {
		values, err := url.ParseQuery(body)
		if err != nil {
			return nil, false, fmt.Errorf("request body: %w", err)
		}
		return valuesObject(values), false, nil
	}
	var doc any
	if err := util.UnmarshalJSON([]byte(body), &doc); err != nil {
		return nil, false, fmt.Errorf("request body: %w", err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, false, fmt.Errorf("request body: %w", err)
	}
	return v, false, nil
}

// checkShape refuses a body with more elements or deeper nesting than
// limits allow, scanning its bytes without allocating.
func checkShape(kind, body string, limits BodyLimits) error {
	if kind == "form" {
		if limits.MaxElements > 0 && strings.Count(body, "&")+1 > limits.MaxElements {
			return fmt.Errorf("%w: more than %d form fields", ErrBodyTooComplex, limits.MaxElements)
		}
		return nil
	}
	elements, depth := jsonShape(body, limits.MaxElements, limits.MaxDepth)
	switch {
	case limits.MaxDepth > 0 && depth > limits.MaxDepth:
		return fmt.Errorf("%w: nested deeper than %d", ErrBodyTooComplex, limits.MaxDepth)
	case limits.MaxElements > 0 && elements > limits.MaxElements:
		return fmt.Errorf("%w: more than %d values", ErrBodyTooComplex, limits.MaxElements)
	}
	return nil
}

// jsonShape counts a JSON text's values (an upper bound: one per container
// and one per separator, plus one) and its deepest nesting, outside
// strings. It stops as soon as either passes its limit (<= 0: none), so a
// hostile body costs one pass over its bytes at most. The text is not
// validated here; the parser does that.
func jsonShape(text string, maxElements, maxDepth int) (elements, deepest int) {
	elements = 1
	depth := 0
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			elements++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		case ',':
			elements++
		default:
			continue
		}
		if maxDepth > 0 && deepest > maxDepth || maxElements > 0 && elements > maxElements {
			return elements, deepest
		}
	}
	return elements, deepest
}

// bodyKind is "json", "form" or "" (not parsed) for a content-type. Like
// OPA-Envoy it matches the media type by substring; parameters such as
// charset do not matter.
func bodyKind(contentType string) string {
	if contentType == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		contentType = mt
	}
	switch {
	case strings.Contains(contentType, "application/json"):
		return "json"
	case strings.Contains(contentType, "application/x-www-form-urlencoded"):
		return "form"
	}
	return ""
}

func isTruncated(headers map[string]string, size, maxBody int) (bool, error) {
	if maxBody > 0 && size > maxBody {
		return true, nil
	}
	cl, ok := headers["content-length"]
	if !ok {
		return false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
	if err != nil {
		return false, fmt.Errorf("content-length %q: not a number", cl)
	}
	return n > int64(size), nil
}
