# tokenwise's starter policy: edit data.json for your routes, this file for
# your rules. tokenwise asks data.envoy.authz.allow for every request.
#
# A route in data.tokenwise.routes is an object with:
#   methods       HTTP methods it applies to (absent: every method)
#   path          an exact path, or
#   prefix        a path and everything below it ("/orders" matches /orders
#                 and /orders/42, not /ordersx)
#   public        true: allowed without a token
#   scopes        scopes the token must all carry
#   one_time_use  true: a token may be used once on this route
#   max_uses      a token may be used at most this many times on it
# When several routes match a request, all their requirements apply.
# A token carrying the claim "one_time": true is single-use on every route.
package envoy.authz

method := input.attributes.request.http.method

# request_path is the unescaped path without its query, from input.parsed_path.
request_path := concat("/", array.concat([""], input.parsed_path))

routes := data.tokenwise.routes

# matches holds the indexes of the routes that apply to this request.
matches contains i if {
	some i, route in routes
	method_matches(route)
	path_matches(route)
}

method_matches(route) if not route.methods

method_matches(route) if method in route.methods

path_matches(route) if route.path == request_path

path_matches(route) if {
	prefix := trim_right(route.prefix, "/")
	prefix_matches(prefix)
}

prefix_matches(prefix) if request_path == prefix

prefix_matches(prefix) if startswith(request_path, concat("", [prefix, "/"]))

# "." and ".." segments could make a path look like another route's; refuse
# them, in every spelling some server behind the proxy may still resolve:
# encoded once more (%2e%2e, any case, which parsed_path has decoded once),
# with a matrix parameter (Tomcat's "..;"), or beside a backslash or an
# encoded slash or backslash ("..\admin", "..%5c", "..%2f").
dot_segments if {
	some segment in input.parsed_path
	some part in segment_parts(segment)
	part in {".", ".."}
}

# segment_parts reads a parsed_path segment as a lenient server would: "%2e"
# as ".", "%2f", "%5c" and "\" as separators, and a ";" parameter cut off.
segment_parts(segment) := {trim_space(split(part, ";")[0]) |
	lenient := replace(replace(replace(replace(lower(segment), "%2e", "."), "%2f", "/"), "%5c", "/"), "\\", "/")
	some part in split(lenient, "/")
}

# upstream_headers are the headers this policy sets upstream on some allow;
# an allow that does not set one removes it, so a client cannot send its own.
upstream_headers := {"x-user-scopes"}

public if {
	count(matches) > 0
	every i in matches {
		routes[i].public == true
	}
}

required_scopes contains scope if {
	some i in matches
	some scope in object.get(routes[i], "scopes", [])
}

missing_scopes := required_scopes - {scope | some scope in input.token.scopes}

one_time if {
	some i in matches
	routes[i].one_time_use == true
}

one_time if input.token.claims.one_time == true

use_limits := {n | some i in matches; n := routes[i].max_uses}

deny(reason) := {"allowed": false, "reason": reason}

default allow := {"allowed": false, "reason": "request denied by policy"}

allow := deny("the request path has . or .. segments") if {
	dot_segments
} else := deny(sprintf("no route for %s %s", [method, request_path])) if {
	count(matches) == 0
} else := {"allowed": true, "reason": "public route", "request_headers_to_remove": sort(upstream_headers)} if {
	public
} else := deny("this route needs a bearer token") if {
	input.token == null
} else := deny(sprintf("the token lacks scope %s", [concat(" ", sort(missing_scopes))])) if {
	count(missing_scopes) > 0
} else := object.union_n([granted, one_time_part, use_limit_part])

# granted tells the upstream which scopes the token carried.
granted := {
	"allowed": true,
	"headers": {"x-user-scopes": concat(" ", sort(input.token.scopes))},
	"reason": "token has the route's scopes",
}

one_time_part := {"one_time_use": true} if one_time

else := {}

use_limit_part := {"max_uses": min(use_limits)} if count(use_limits) > 0

else := {}
