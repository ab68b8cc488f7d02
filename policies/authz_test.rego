package envoy.authz_test

import data.envoy.authz

# request builds the input tokenwise gives the policy, in OPA-Envoy's shape.
request(method, path, token) := {
	"attributes": {"request": {"http": {"method": method, "path": path, "headers": {}}}},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"parsed_query": {},
	"token": token,
}

token(scopes) := {
	"issuer": "dev",
	"header": {"alg": "ES256", "kid": "k1"},
	"claims": {"sub": "alice", "jti": "j1"},
	"scopes": scopes,
}

test_public_route_allows_anonymous_get if {
	authz.allow.allowed with input as request("GET", "/public/hello", null)
}

test_public_route_allows_a_token_too if {
	authz.allow.allowed with input as request("GET", "/public/hello", token([]))
}

test_public_prefix_itself_is_public if {
	authz.allow.allowed with input as request("HEAD", "/public", null)
}

test_public_route_is_public_for_its_methods_only if {
	d := authz.allow with input as request("POST", "/public/hello", null)
	d.allowed == false
	d.reason == "no route for POST /public/hello"
}

test_prefix_matches_whole_segments_only if {
	d := authz.allow with input as request("GET", "/publicity", null)
	d.allowed == false
}

test_dot_segments_are_refused if {
	d := authz.allow with input as request("GET", "/public/../orders", null)
	d.allowed == false
	d.reason == "the request path has . or .. segments"
}

test_unknown_route_is_denied if {
	d := authz.allow with input as request("GET", "/admin", token(["orders:read"]))
	d.allowed == false
	d.reason == "no route for GET /admin"
}

test_protected_route_needs_a_token if {
	d := authz.allow with input as request("GET", "/orders/42", null)
	d.allowed == false
	d.reason == "this route needs a bearer token"
}

test_protected_route_allows_the_scope if {
	d := authz.allow with input as request("GET", "/orders/42?expand=items", token(["orders:read", "profile"]))
	d.allowed == true
	d.headers == {"x-user-scopes": "orders:read profile"}
	not d.one_time_use
	not d.max_uses
}

test_protected_route_denies_a_missing_scope if {
	d := authz.allow with input as request("POST", "/orders", token(["orders:read"]))
	d.allowed == false
	d.reason == "the token lacks scope orders:write"
}

test_transfer_is_one_time if {
	d := authz.allow with input as request("POST", "/transfer", token(["payments:transfer"]))
	d.allowed == true
	d.one_time_use == true
}

test_one_time_claim_makes_any_route_one_time if {
	tok := object.union(token(["orders:read"]), {"claims": {"sub": "alice", "one_time": true}})
	d := authz.allow with input as request("GET", "/orders", tok)
	d.allowed == true
	d.one_time_use == true
}

test_reports_have_a_use_limit if {
	d := authz.allow with input as request("GET", "/reports/daily", token(["reports:read"]))
	d.allowed == true
	d.max_uses == 100
}

test_overlapping_routes_all_apply if {
	routes := [
		{"prefix": "/a", "scopes": ["s1"], "max_uses": 10},
		{"methods": ["GET"], "path": "/a/b", "scopes": ["s2"], "max_uses": 3},
	]
	denied := authz.allow with input as request("GET", "/a/b", token(["s1"]))
		with data.tokenwise.routes as routes
	denied.reason == "the token lacks scope s2"
	allowed := authz.allow with input as request("GET", "/a/b", token(["s1", "s2"]))
		with data.tokenwise.routes as routes
	allowed.allowed == true
	allowed.max_uses == 3
}

test_public_and_protected_overlap_needs_the_token if {
	routes := [{"prefix": "/", "public": true}, {"prefix": "/private", "scopes": ["p"]}]
	d := authz.allow with input as request("GET", "/private/x", null)
		with data.tokenwise.routes as routes
	d.allowed == false
	open := authz.allow with input as request("GET", "/other", null)
		with data.tokenwise.routes as routes
	open.allowed == true
}

test_dot_segment_spellings_are_refused if {
	every path in [
		"/public/..;/orders",
		"/public/..;jsessionid=x/orders",
		"/public/%2e%2e/orders",
		"/public/%2E%2e/orders",
		"/public/.%2E/orders",
		"/public/%2e/orders",
		"/public/..\\orders",
		"/public/..%5corders",
		"/public/..%5Corders",
		"/public/..%2forders",
		"/public/.\\orders",
		"/public/x\\..\\..\\orders",
	] {
		d := authz.allow with input as request("GET", path, null)
		d.allowed == false
		d.reason == "the request path has . or .. segments"
	}
}

test_dotted_names_are_not_dot_segments if {
	authz.allow.allowed with input as request("GET", "/public/.well-known", null)
	authz.allow.allowed with input as request("GET", "/public/a..b", null)
	authz.allow.allowed with input as request("GET", "/public/...", null)
}

test_public_route_removes_the_scopes_header if {
	d := authz.allow with input as request("GET", "/public/hello", null)
	d.allowed == true
	"x-user-scopes" in d.request_headers_to_remove
	not d.headers
}

test_every_upstream_header_is_set_or_removed if {
	every r in [
		request("GET", "/public/hello", null),
		request("GET", "/public/hello", token(["orders:read"])),
		request("GET", "/orders/1", token(["orders:read"])),
		request("POST", "/transfer", token(["payments:transfer"])),
		request("GET", "/reports/1", token(["reports:read"])),
	] {
		d := authz.allow with input as r
		d.allowed == true
		every name in authz.upstream_headers {
			set_or_removed(d, name)
		}
	}
}

set_or_removed(d, name) if d.headers[name]

set_or_removed(d, name) if name in d.request_headers_to_remove
