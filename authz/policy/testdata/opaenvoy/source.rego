package envoy.authz

default allow := {"allowed": false, "http_status": 401}

internal if net.cidr_contains("10.0.0.0/8", input.attributes.source.address.socketAddress.address)

allow := {"allowed": true, "headers": {"x-route": input.attributes.contextExtensions.route}} if {
	internal
	input.attributes.contextExtensions.route != "admin"
}

allow := {"allowed": true, "one_time_use": true} if {
	input.parsed_path == ["pay"]
	input.token.scopes[_] == "payments:write"
	input.token.claims.sub != ""
}
