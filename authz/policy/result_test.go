package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// regoValue evaluates a Rego term and returns it as the engine sees a
// decision (numbers as json.Number, objects as map[string]any).
func regoValue(t *testing.T, term string) any {
	t.Helper()
	rs, err := rego.New(rego.Query("x := " + term)).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval %s: %v %v", term, rs, err)
	}
	return rs[0].Bindings["x"]
}

func TestParseDecisionEveryKey(t *testing.T) {
	v := regoValue(t, `{
		"allowed": true,
		"headers": {"X-B": ["2", "1"], "x-a": "a"},
		"request_headers_to_remove": ["x-secret", "Cookie"],
		"response_headers_to_add": {"set-cookie": ["a=1", "b=2"]},
		"query_parameters_to_set": {"Page": "2", "tag": ["x", "y"]},
		"query_parameters_to_remove": ["token", "Debug"],
		"http_status": 418,
		"body": "teapot",
		"dynamic_metadata": {"user": "alice", "n": 1, "nested": {"ok": true}},
		"max_uses": 5,
		"reason": "because",
		"something_else": "ignored, as OPA-Envoy ignores it"
	}`)
	got, err := parseDecision(v)
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{
		Allowed:                 true,
		Headers:                 []Header{{"x-a", "a"}, {"x-b", "2"}, {"x-b", "1"}},
		RequestHeadersToRemove:  []string{"cookie", "x-secret"},
		ResponseHeadersToAdd:    []Header{{"set-cookie", "a=1"}, {"set-cookie", "b=2"}},
		QueryParametersToSet:    []Header{{"Page", "2"}, {"tag", "x"}, {"tag", "y"}},
		QueryParametersToRemove: []string{"Debug", "token"},
		HTTPStatus:              418,
		Body:                    "teapot",
		DynamicMetadata:         map[string]any{"user": "alice", "n": json.Number("1"), "nested": map[string]any{"ok": true}},
		MaxUses:                 5,
		Reason:                  "because",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseDecisionForms(t *testing.T) {
	cases := []struct {
		term string
		want Decision
	}{
		{`true`, Decision{Allowed: true}},
		{`false`, Decision{}},
		{`{"allowed": false}`, Decision{}},
		{`{"allowed": true, "one_time_use": true}`, Decision{Allowed: true, MaxUses: 1}},
		{`{"allowed": true, "one_time_use": false}`, Decision{Allowed: true}},
		{`{"allowed": true, "one_time_use": true, "max_uses": 3}`, Decision{Allowed: true, MaxUses: 1}},
		{`{"allowed": true, "max_uses": 3.0}`, Decision{Allowed: true, MaxUses: 3}},
		{`{"allowed": false, "body": {"error": "nope", "n": 1}}`, Decision{Body: `{"error":"nope","n":1}`}},
		{`{"allowed": false, "body": ""}`, Decision{}},
		{`{"allowed": true, "headers": {}}`, Decision{Allowed: true}},
	}
	for _, c := range cases {
		got, err := parseDecision(regoValue(t, c.term))
		if err != nil {
			t.Errorf("%s: %v", c.term, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.term, got, c.want)
		}
	}
}

func TestParseDecisionMalformed(t *testing.T) {
	cases := map[string]string{
		`"yes"`:                                  "want a boolean or an object",
		`1`:                                      "want a boolean or an object",
		`null`:                                   "want a boolean or an object",
		`{}`:                                     "allowed is null",
		`{"allowed": "true"}`:                    "allowed is a string",
		`{"allowed": true, "headers": ["a"]}`:    "headers",
		`{"allowed": true, "headers": {"a": 1}}`: "headers",
		`{"allowed": true, "headers": {"a": ["x", 1]}}`:             "headers",
		`{"allowed": true, "headers": {"a": "x\r\nevil: 1"}}`:       "control character",
		`{"allowed": true, "headers": {"bad name": "x"}}`:           "not a valid name",
		`{"allowed": true, "headers": {"": "x"}}`:                   "not a valid name",
		`{"allowed": true, "request_headers_to_remove": "a"}`:       "request_headers_to_remove",
		`{"allowed": true, "request_headers_to_remove": [1]}`:       "request_headers_to_remove",
		`{"allowed": true, "response_headers_to_add": "a"}`:         "response_headers_to_add",
		`{"allowed": true, "query_parameters_to_set": {"a": true}}`: "query_parameters_to_set",
		`{"allowed": true, "query_parameters_to_remove": {}}`:       "query_parameters_to_remove",
		`{"allowed": false, "http_status": 99}`:                     "http_status",
		`{"allowed": false, "http_status": 600}`:                    "http_status",
		`{"allowed": false, "http_status": 403.5}`:                  "http_status",
		`{"allowed": false, "http_status": "403"}`:                  "http_status",
		`{"allowed": false, "body": 1}`:                             "body",
		`{"allowed": true, "dynamic_metadata": []}`:                 "dynamic_metadata",
		`{"allowed": true, "one_time_use": "yes"}`:                  "one_time_use",
		`{"allowed": true, "max_uses": 0}`:                          "max_uses",
		`{"allowed": true, "max_uses": -1}`:                         "max_uses",
		`{"allowed": true, "max_uses": 1.5}`:                        "max_uses",
		`{"allowed": true, "max_uses": "2"}`:                        "max_uses",
		`{"allowed": true, "reason": 1}`:                            "reason",
	}
	for term, wantErr := range cases {
		_, err := parseDecision(regoValue(t, term))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want one containing %q", term, err, wantErr)
		}
	}
}
