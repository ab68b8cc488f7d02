package envoy.authz_test

import data.envoy.authz

request(ext, token, body) := {
	"attributes": {
		"request": {"http": {"method": "POST", "path": "/x", "headers": {}}},
		"contextExtensions": ext,
	},
	"parsed_path": ["x"],
	"parsed_body": body,
	"token": token,
}

token(scopes) := {"issuer": "corp", "header": {"alg": "ES256"}, "claims": {"sub": "alice"}, "scopes": scopes}

test_public_route if {
	authz.allow.allowed with input as request({"public": "true"}, null, null)
}

test_route_without_extensions_is_denied if {
	d := authz.allow with input as request({}, token(["orders:read"]), null)
	d.allowed == false
	d.reason == "this route is not configured for tokenwise"
}

test_scope_route_needs_a_token if {
	d := authz.allow with input as request({"scope": "orders:read"}, null, null)
	d.allowed == false
	d.reason == "this route needs a bearer token"
}

test_missing_scope_is_a_step_up_challenge if {
	d := authz.allow with input as request({"scope": "orders:write"}, token(["orders:read"]), null)
	d.allowed == false
	d.headers["www-authenticate"] == `Bearer realm="tokenwise", error="insufficient_scope", scope="orders:write"`
}

test_scope_route_allows_and_forwards_scopes if {
	d := authz.allow with input as request({"scope": "orders:read"}, token(["orders:read", "a"]), null)
	d.allowed == true
	d.headers["x-user-scopes"] == "a orders:read"
	not d.max_uses
}

test_transfer_is_one_time_and_amount_checked if {
	ext := {"scope": "payments:transfer", "max_uses": "1", "max_amount": "1000"}
	d := authz.allow with input as request(ext, token(["payments:transfer"]), {"amount": 250})
	d.allowed == true
	d.max_uses == 1
}

test_transfer_over_the_amount_is_refused if {
	ext := {"scope": "payments:transfer", "max_uses": "1", "max_amount": "1000"}
	d := authz.allow with input as request(ext, token(["payments:transfer"]), {"amount": 5000})
	d.allowed == false
	d.http_status == 422
}

test_transfer_without_a_body_is_refused if {
	ext := {"scope": "payments:transfer", "max_amount": "1000"}
	d := authz.allow with input as request(ext, token(["payments:transfer"]), null)
	d.allowed == false
}
