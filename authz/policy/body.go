package policy

import (
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// parseBody follows OPA-Envoy's rules for input.parsed_body and
// input.truncated_body: a JSON body (content-type containing
// application/json) becomes its value and a form body
// (application/x-www-form-urlencoded) name → array of values; the body is
// taken from body, else raw_body (pack_as_bytes). A body is truncated when
// Envoy says so (x-envoy-auth-partial-body: true), when content-length is
// larger than what Envoy sent, or when it is longer than maxBody; a truncated
// body is not parsed. Other content types are not parsed.
func parseBody(headers map[string]string, body string, rawBody []byte, maxBody int) (ast.Value, bool, error) {
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
	if truncated, err := isTruncated(headers, len(body), maxBody); err != nil || truncated {
		return ast.NullValue, truncated, err
	}
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
