# Step-up: the bundled policy (data.envoy.authz), but a token that lacks what
# a route needs is told exactly what to come back with.
#
#   - Missing scopes: 403 with
#     WWW-Authenticate: Bearer realm="tokenwise", error="insufficient_scope", scope="<scopes>"
#     (RFC 6750 §3: scope lists every scope the route needs, space-separated),
#     so a client can ask its authorization server for a token carrying them.
#   - A route with "acr": "<value>" in data.tokenwise.routes needs a token whose
#     acr claim is that value, else 401 with error="insufficient_user_authentication"
#     and acr_values (RFC 9470, OAuth 2.0 Step Up Authentication Challenge).
#
# Use: policy.query: data.tokenwise.library.stepup.allow
package tokenwise.library.stepup

import data.envoy.authz

challenge(params) := concat(", ", array.concat([`Bearer realm="tokenwise"`], params))

# applies holds when the bundled policy found a route that a token must pass.
applies if {
	not authz.dot_segments
	count(authz.matches) > 0
	not authz.public
	input.token != null
}

required_acr contains acr if {
	some i in authz.matches
	acr := authz.routes[i].acr
}

acr_missing if {
	some acr in required_acr
	object.get(input.token.claims, "acr", "") != acr
}

scope_deny := {
	"allowed": false,
	"http_status": 403,
	"reason": sprintf("the token lacks scope %s", [concat(" ", sort(authz.missing_scopes))]),
	"headers": {"www-authenticate": challenge([
		`error="insufficient_scope"`,
		sprintf(`scope="%s"`, [concat(" ", sort(authz.required_scopes))]),
	])},
}

acr_deny := {
	"allowed": false,
	"http_status": 401,
	"reason": sprintf("this route needs authentication level %s", [concat(" ", sort(required_acr))]),
	"headers": {"www-authenticate": challenge([
		`error="insufficient_user_authentication"`,
		`error_description="A different authentication level is required"`,
		sprintf(`acr_values="%s"`, [concat(" ", sort(required_acr))]),
	])},
}

default allow := {"allowed": false, "reason": "request denied by policy"}

allow := acr_deny if {
	applies
	acr_missing
} else := scope_deny if {
	applies
	count(authz.missing_scopes) > 0
} else := authz.allow
