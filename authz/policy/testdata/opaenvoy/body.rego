package envoy.authz

default allow := false

allow if {
	input.attributes.request.http.method == "POST"
	not input.truncated_body
	input.parsed_body.amount <= to_number(object.get(input.attributes.contextExtensions, "max_amount", "100"))
}

allow if {
	input.attributes.request.http.method == "GET"
	input.parsed_query.a == ["1"]
}
