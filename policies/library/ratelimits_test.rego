package tokenwise.library.ratelimits_test

import data.tokenwise.library.ratelimits

request(path, token) := {
	"attributes": {
		"source": {"address": {"socketAddress": {"address": "203.0.113.7", "portValue": 40000}}},
		"request": {"http": {"method": "GET", "path": path, "headers": {}}},
	},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"token": token,
}

user(claims) := {"issuer": "corp", "claims": claims, "scopes": []}

names(d) := {l.name | some l in d.rate_limits}

limit(d, name) := l if {
	some l in d.rate_limits
	l.name == name
}

test_per_user_keyed_by_issuer_and_subject if {
	d := ratelimits.allow with input as request("/orders", user({"sub": "alice"}))
	d.allowed == true
	names(d) == {"per-user"}
	limit(d, "per-user") == {"name": "per-user", "key": "corp|alice", "requests": 100, "per": "1m", "burst": 20}
}

test_per_client_from_azp_or_client_id if {
	d := ratelimits.allow with input as request("/orders", user({"sub": "alice", "azp": "web"}))
	limit(d, "per-client").key == "corp|web"
	e := ratelimits.allow with input as request("/orders", user({"client_id": "batch"}))
	names(e) == {"per-client"}
	limit(e, "per-client") == {"name": "per-client", "key": "corp|batch", "requests": 1000, "per": "1m"}
}

test_per_address_for_anonymous_public_routes if {
	d := ratelimits.allow with input as request("/public/status", null)
	d.allowed == true
	d.rate_limits == [{"name": "per-address", "key": "203.0.113.7", "requests": 30, "per": "1m"}]
}

test_anonymous_outside_public_is_refused_unlimited if {
	d := ratelimits.allow with input as request("/orders", null)
	d.allowed == false
	not d.rate_limits
	e := ratelimits.allow with input as request("/publicity", null)
	e.allowed == false
}

test_tokens_are_not_limited_by_address if {
	d := ratelimits.allow with input as request("/public/status", user({"sub": "alice"}))
	not "per-address" in names(d)
}

test_tenant_quota_stacks_on_the_user_burst if {
	d := ratelimits.allow with input as request("/orders", user({"sub": "alice", "tenant": "acme"}))
	names(d) == {"per-user", "tenant-quota"}
	limit(d, "tenant-quota") == {"name": "tenant-quota", "key": "acme", "requests": 100000, "per": "24h"}
	limit(d, "per-user").burst == 20
}

test_settings_override_and_turn_off if {
	settings := {"user": {"requests": 10, "per": "1s", "burst": 5}, "client": {"off": true}, "tenant": {"claim": "org", "cost": 2}}
	d := ratelimits.allow with input as request("/orders", user({"sub": "alice", "azp": "web", "org": "acme"}))
		with data.tokenwise.ratelimits as settings
	names(d) == {"per-user", "tenant-quota"}
	limit(d, "per-user") == {"name": "per-user", "key": "corp|alice", "requests": 10, "per": "1s", "burst": 5}
	limit(d, "tenant-quota").cost == 2
	not limit(d, "tenant-quota").claim
}

test_limited_leaves_denials_alone if {
	d := ratelimits.limited({"allowed": false, "http_status": 403}) with input as request("/orders", user({"sub": "alice"}))
	d == {"allowed": false, "http_status": 403}
	e := ratelimits.limited({"allowed": true, "headers": {"x": "1"}}) with input as request("/orders", user({"sub": "alice"}))
	e.headers == {"x": "1"}
	names(e) == {"per-user"}
}

test_non_string_claims_give_no_key if {
	d := ratelimits.allow with input as request("/orders", user({"sub": 7, "azp": ["x"], "tenant": {"a": 1}}))
	d.allowed == true
	not d.rate_limits
}
