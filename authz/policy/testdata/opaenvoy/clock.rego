package envoy.authz

# Calls a non-deterministic built-in: never remembered.
default allow := false

allow if {
	input.token.claims.exp > time.now_ns() / 1000000000
	input.attributes.request.http.method == "GET"
}
