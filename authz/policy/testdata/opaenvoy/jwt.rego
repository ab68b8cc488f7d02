package envoy.authz

default allow := false

token := {"valid": valid, "payload": payload} if {
	[_, encoded] := split(input.attributes.request.http.headers.authorization, " ")
	[_, payload, _] := io.jwt.decode(encoded)
	valid := payload.exp > 1700000000
}

action_allowed if {
	input.attributes.request.http.method == "GET"
	token.payload.role == "guest"
	glob.match("/orders/*", ["/"], input.attributes.request.http.path)
}

action_allowed if {
	input.attributes.request.http.method == "POST"
	token.payload.role == "admin"
	input.parsed_body.amount < 500
}

allow if {
	token.valid
	action_allowed
}
