package envoy.authz

import input.attributes.request.http as http_request

default allow := {"allowed": false, "http_status": 403, "body": "{\"error\": \"forbidden\"}",
	"headers": {"content-type": "application/json", "x-denied-by": "opa"}}

user := http_request.headers["x-user"]

allow := {
	"allowed": true,
	"headers": {"x-auth-user": user, "x-view": object.get(input.parsed_query, "view", ["none"])[0]},
	"request_headers_to_remove": ["x-api-key"],
	"response_headers_to_add": {"x-served-for": user},
	"dynamic_metadata": {"user": user, "segments": count(input.parsed_path)},
	"query_parameters_to_set": {"checked": "1"},
} if {
	user in {"alice", "bob"}
	http_request.method in {"GET", "HEAD"}
}

allow := {"allowed": false, "http_status": 429, "reason": "slow down",
	"headers": {"retry-after": "1"}} if user == "mallory"
