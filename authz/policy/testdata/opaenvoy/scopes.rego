package envoy.authz

default allow := {"allowed": false, "reason": "missing scope"}

required := {"GET": "orders:read", "POST": "orders:write"}

allow := {"allowed": true, "headers": {"x-user-id": input.token.claims.sub, "x-tenant": tenant},
	"max_uses": 5} if {
	required[input.attributes.request.http.method] in input.token.scopes
	tenant := object.get(input.token.claims, "tenant", "none")
	input.attributes.request.http.headers["x-tenant-id"] == tenant
}
