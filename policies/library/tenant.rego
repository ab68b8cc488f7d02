# Tenant isolation: a token may only reach its own tenant's resources.
#
# Requests under <prefix>/<tenant>/... (prefix default "/tenants") are allowed
# when the token's tenant claim (default "tenant"; a string, or an array for a
# user of several tenants) names that tenant. The upstream gets the tenant in
# x-tenant-id, set by tokenwise so a client cannot choose it.
#
# Settings, all optional, in data.tokenwise.tenant:
#   {"claim": "org_id", "prefix": "/orgs", "header": "x-org-id"}
#
# Use: policy.query: data.tokenwise.library.tenant.allow
package tokenwise.library.tenant

settings := object.union(
	{"claim": "tenant", "prefix": "/tenants", "header": "x-tenant-id"},
	configured,
)

default configured := {}

configured := data.tokenwise.tenant

prefix_segments := [s | some s in split(trim(settings.prefix, "/"), "/")]

# path_tenant is the tenant the request path names.
path_tenant := input.parsed_path[count(prefix_segments)] if {
	array.slice(input.parsed_path, 0, count(prefix_segments)) == prefix_segments
	input.parsed_path[count(prefix_segments)] != ""
}

dot_segments if {
	some segment in input.parsed_path
	some part in segment_parts(segment)
	part in {".", ".."}
}

# segment_parts reads a parsed_path segment as a lenient server would: "%2e"
# as ".", "%2f", "%5c" and "\\" as separators, and a ";" parameter cut off,
# so "..;", "%2e%2e" (any case) and backslash spellings count as dot segments.
segment_parts(segment) := {trim_space(split(part, ";")[0]) |
	lenient := replace(replace(replace(replace(lower(segment), "%2e", "."), "%2f", "/"), "%5c", "/"), "\\", "/")
	some part in split(lenient, "/")
}

token_tenants contains t if {
	t := input.token.claims[settings.claim]
	is_string(t)
}

token_tenants contains t if {
	some t in input.token.claims[settings.claim]
	is_string(t)
}

deny(status, reason) := {"allowed": false, "http_status": status, "reason": reason}

default allow := {"allowed": false, "reason": "request denied by policy"}

allow := deny(404, "no tenant in the path") if {
	not path_tenant
} else := deny(400, "the request path has . or .. segments") if {
	dot_segments
} else := deny(401, "this route needs a bearer token") if {
	input.token == null
} else := deny(403, sprintf("the token is not for tenant %s", [path_tenant])) if {
	not path_tenant in token_tenants
} else := {
	"allowed": true,
	"reason": "the token is for the tenant in the path",
	"headers": {settings.header: path_tenant},
}
