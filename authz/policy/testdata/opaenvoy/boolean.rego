package envoy.authz

default allow := false

allow if {
	input.attributes.request.http.method == "GET"
	input.parsed_path[0] == "public"
}

allow if input.attributes.request.http.headers["x-api-key"] == "k-123"
