# Sender-constrained example: tokenwise has already checked the token's
# proof of possession; the policy only says which proof each route wants.
package envoy.authz

default allow := {"allowed": false, "reason": "no rule allows this request"}

# Service-to-service calls come over mutual TLS with certificate-bound tokens.
allow := {"allowed": true, "headers": {"x-proof": "mtls"}} if {
	input.parsed_path[0] == "internal"
	input.token.proof == "mtls"
}

# Public clients (apps, browsers) prove a DPoP key.
allow := {"allowed": true, "headers": {"x-proof": "dpop"}} if {
	input.parsed_path[0] == "orders"
	input.token.proof == "dpop"
	"orders:read" in input.token.scopes
}
