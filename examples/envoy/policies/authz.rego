# The plain-Envoy example's policy. Envoy's route table says what each route
# needs, in the ext_authz per-route context_extensions, which reach Rego as
# input.attributes.contextExtensions (string values):
#
#   public: "true"        no token needed
#   scope: "<scope>"      the token must carry this scope
#   max_uses: "<n>"       the token may pass this route n times (1: one-time)
#   max_amount: "<n>"     a JSON body's "amount" may not exceed n
#
# A route with no context_extensions is denied, so a route added to Envoy
# without thought for authorization fails closed.
package envoy.authz

ext := object.get(input.attributes, "contextExtensions", {})

default allow := {"allowed": false, "reason": "this route is not configured for tokenwise"}

allow := {"allowed": true, "reason": "public route"} if {
	ext.public == "true"
} else := {"allowed": false, "reason": "this route needs a bearer token"} if {
	ext.scope
	input.token == null
} else := step_up if {
	ext.scope
	not ext.scope in input.token.scopes
} else := {"allowed": false, "http_status": 422, "reason": sprintf("amount over %s", [ext.max_amount])} if {
	ext.max_amount
	not amount_ok
} else := object.union(granted, limit) if {
	ext.scope
}

# step_up tells the client which scope to come back with (RFC 6750 §3).
step_up := {
	"allowed": false,
	"reason": sprintf("the token lacks scope %s", [ext.scope]),
	"headers": {"www-authenticate": sprintf(`Bearer realm="tokenwise", error="insufficient_scope", scope="%s"`, [ext.scope])},
}

# amount_ok reads the request body Envoy sent (with_request_body).
amount_ok if input.parsed_body.amount <= to_number(ext.max_amount)

granted := {
	"allowed": true,
	"reason": sprintf("token has scope %s", [ext.scope]),
	"headers": {"x-user-scopes": concat(" ", sort(input.token.scopes))},
}

limit := {"max_uses": to_number(ext.max_uses)} if ext.max_uses

else := {}
