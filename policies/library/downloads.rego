# N-use download links: a token minted for one file may fetch that file, and
# only that file, a limited number of times.
#
# The token carries:
#   download   the exact path it unlocks, e.g. "/downloads/report-2026.pdf"
#   max_uses   optional: how many fetches it allows (default and cap below)
# tokenwise counts each allowed fetch against the token's jti (or its content
# hash) in the use-limit store, across every replica that shares the store.
#
# Settings, all optional, in data.tokenwise.downloads:
#   {"prefix": "/downloads", "default_uses": 3, "max_uses": 10}
#
# Use: policy.query: data.tokenwise.library.downloads.allow
package tokenwise.library.downloads

settings := object.union(
	{"prefix": "/downloads", "default_uses": 3, "max_uses": 10},
	configured,
)

default configured := {}

configured := data.tokenwise.downloads

method := input.attributes.request.http.method

request_path := concat("/", array.concat([""], input.parsed_path))

under_prefix if startswith(request_path, concat("", [trim_right(settings.prefix, "/"), "/"]))

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

# uses is the token's own limit, never above the cap; a bad value grants nothing.
uses := min({input.token.claims.max_uses, settings.max_uses}) if {
	is_number(input.token.claims.max_uses)
	input.token.claims.max_uses >= 1
	round(input.token.claims.max_uses) == input.token.claims.max_uses
} else := settings.default_uses if {
	not input.token.claims.max_uses
}

deny(status, reason) := {"allowed": false, "http_status": status, "reason": reason}

default allow := {"allowed": false, "reason": "request denied by policy"}

allow := deny(404, "not a download") if {
	not under_prefix
} else := deny(400, "the request path has . or .. segments") if {
	dot_segments
} else := deny(405, "downloads are GET or HEAD only") if {
	not method in {"GET", "HEAD"}
} else := deny(401, "a download link is needed") if {
	input.token == null
} else := deny(403, "this link is for another file") if {
	input.token.claims.download != request_path
} else := deny(403, "the link's max_uses is not a positive number") if {
	not uses
} else := {
	"allowed": true,
	"reason": "download link",
	"max_uses": uses,
	"request_headers_to_remove": ["authorization"],
}
