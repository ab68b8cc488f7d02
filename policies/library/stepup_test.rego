package tokenwise.library.stepup_test

import data.tokenwise.library.stepup

request(method, path, token) := {
	"attributes": {"request": {"http": {"method": method, "path": path, "headers": {}}}},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"parsed_query": {},
	"token": token,
}

token(scopes, claims) := {"issuer": "corp", "header": {"alg": "ES256"}, "claims": claims, "scopes": scopes}

routes := [
	{"methods": ["GET"], "prefix": "/public", "public": true},
	{"methods": ["GET"], "prefix": "/orders", "scopes": ["orders:read"]},
	{"methods": ["POST"], "path": "/transfer", "scopes": ["payments:transfer", "payments:read"], "acr": "mfa", "one_time_use": true},
]

test_missing_scope_names_every_scope_the_route_needs if {
	d := stepup.allow with input as request("POST", "/transfer", token(["payments:read"], {"acr": "mfa"}))
		with data.tokenwise.routes as routes
	d.allowed == false
	d.http_status == 403
	d.headers["www-authenticate"] == `Bearer realm="tokenwise", error="insufficient_scope", scope="payments:read payments:transfer"`
	d.reason == "the token lacks scope payments:transfer"
}

test_weak_authentication_is_asked_to_step_up if {
	d := stepup.allow with input as request("POST", "/transfer", token(["payments:transfer", "payments:read"], {"acr": "pwd"}))
		with data.tokenwise.routes as routes
	d.http_status == 401
	contains(d.headers["www-authenticate"], `error="insufficient_user_authentication"`)
	contains(d.headers["www-authenticate"], `acr_values="mfa"`)
}

test_acr_absent_is_weak if {
	d := stepup.allow with input as request("POST", "/transfer", token(["payments:transfer", "payments:read"], {}))
		with data.tokenwise.routes as routes
	d.http_status == 401
}

test_stepped_up_token_gets_the_bundled_decision if {
	d := stepup.allow with input as request("POST", "/transfer", token(["payments:transfer", "payments:read"], {"acr": "mfa"}))
		with data.tokenwise.routes as routes
	d.allowed == true
	d.one_time_use == true
}

test_no_token_is_not_a_step_up if {
	d := stepup.allow with input as request("GET", "/orders/1", null)
		with data.tokenwise.routes as routes
	d.allowed == false
	not d.headers
	d.reason == "this route needs a bearer token"
}

test_public_route_stays_public if {
	stepup.allow.allowed with input as request("GET", "/public/x", null)
		with data.tokenwise.routes as routes
}

test_unknown_route_is_denied_without_challenge if {
	d := stepup.allow with input as request("GET", "/nowhere", token(["orders:read"], {}))
		with data.tokenwise.routes as routes
	d.allowed == false
	not d.headers
}
