# Rate limits for any route: per user, per client, per source address for
# anonymous routes, and a tenant quota stacked on the per-user burst.
# tokenwise enforces a decision's rate_limits with GCRA after the policy
# allows and before any use limit; a refusal is 429 with Retry-After and
# RateLimit headers. Counts live in the use-limit store, shared by replicas.
#
# Limits (each applies when the request has what it is keyed by):
#   per-user      the token's issuer and sub
#   per-client    the token's issuer and azp, else client_id (RFC 9068)
#   per-address   the peer address Envoy saw, for requests without a token
#                 (behind a load balancer, that is the balancer unless Envoy
#                 is set to trust X-Forwarded-For hops)
#   tenant-quota  the tenant claim, stacked on per-user: a request passes
#                 only when both allow it, and a refusal takes from neither
#
# Settings, all optional, in data.tokenwise.ratelimits (each limit takes
# requests, per, and optionally burst and cost; "off": true drops it):
#   {"user": {"requests": 100, "per": "1m", "burst": 20},
#    "client": {"requests": 1000, "per": "1m"},
#    "address": {"requests": 30, "per": "1m"},
#    "tenant": {"claim": "tenant", "requests": 100000, "per": "24h"},
#    "public_prefix": "/public"}
#
# Use: policy.query: data.tokenwise.library.ratelimits.allow (any valid token,
# and anonymous requests under public_prefix, each within its limits), or in
# your own policy:
#   import data.tokenwise.library.ratelimits
#   allow := ratelimits.limited({"allowed": true}) if { ...your rules... }
package tokenwise.library.ratelimits

defaults := {
	"user": {"requests": 100, "per": "1m", "burst": 20},
	"client": {"requests": 1000, "per": "1m"},
	"address": {"requests": 30, "per": "1m"},
	"tenant": {"claim": "tenant", "requests": 100000, "per": "24h"},
	"public_prefix": "/public",
}

default configured := {}

configured := data.tokenwise.ratelimits

# settings merges each configured limit over its default, key by key.
settings[name] := object.union(defaults[name], object.get(configured, name, {})) if {
	some name in ["user", "client", "address", "tenant"]
}

settings.public_prefix := object.get(configured, "public_prefix", defaults.public_prefix)

# rate is a limit's numbers from its settings, without tokenwise-unknown keys.
rate(name) := object.filter(settings[name], ["requests", "per", "burst", "cost"]) if {
	not settings[name].off
}

token := input.token if input.token != null

client_id := token.claims.azp if {
	is_string(token.claims.azp)
} else := token.claims.client_id if {
	is_string(token.claims.client_id)
}

tenant := token.claims[settings.tenant.claim] if is_string(token.claims[settings.tenant.claim])

peer := input.attributes.source.address.socketAddress.address

# Keys name the issuer too: two issuers may hand out the same sub.
per_user := object.union({"name": "per-user", "key": sprintf("%s|%s", [token.issuer, token.claims.sub])}, rate("user")) if {
	is_string(token.claims.sub)
}

per_client := object.union({"name": "per-client", "key": sprintf("%s|%s", [token.issuer, client_id])}, rate("client"))

per_address := object.union({"name": "per-address", "key": peer}, rate("address")) if {
	input.token == null
	is_string(peer)
}

tenant_quota := object.union({"name": "tenant-quota", "key": tenant}, rate("tenant"))

applicable contains per_user

applicable contains per_client

applicable contains per_address

applicable contains tenant_quota

# limits is every limit that applies to this request, for rate_limits.
limits := [l | some l in applicable]

# limited(decision) is decision with this request's limits, when it allows.
limited(decision) := object.union(decision, {"rate_limits": limits}) if {
	decision.allowed == true
	count(limits) > 0
} else := decision

request_path := concat("/", array.concat([""], input.parsed_path))

public if {
	prefix := trim_right(settings.public_prefix, "/")
	some p in [prefix, concat("", [prefix, "/"])]
	p == request_path
} else if startswith(request_path, concat("", [trim_right(settings.public_prefix, "/"), "/"]))

default allow := {"allowed": false, "reason": "this route needs a bearer token"}

allow := limited({"allowed": true, "reason": "valid token"}) if input.token != null

allow := limited({"allowed": true, "reason": "public route"}) if {
	input.token == null
	public
}
