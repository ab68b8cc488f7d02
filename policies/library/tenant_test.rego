package tokenwise.library.tenant_test

import data.tokenwise.library.tenant

request(path, claims) := {
	"attributes": {"request": {"http": {"method": "GET", "path": path, "headers": {}}}},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"token": {"issuer": "corp", "claims": claims, "scopes": []},
}

anonymous(path) := object.union(request(path, {}), {"token": null})

test_own_tenant_is_allowed_and_forwarded if {
	d := tenant.allow with input as request("/tenants/acme/invoices/7", {"tenant": "acme"})
	d.allowed == true
	d.headers == {"x-tenant-id": "acme"}
}

test_other_tenant_is_forbidden if {
	d := tenant.allow with input as request("/tenants/globex/invoices/7", {"tenant": "acme"})
	d.allowed == false
	d.http_status == 403
	d.reason == "the token is not for tenant globex"
}

test_token_without_the_claim_is_forbidden if {
	d := tenant.allow with input as request("/tenants/acme", {"sub": "alice"})
	d.http_status == 403
}

test_claim_may_list_several_tenants if {
	tenant.allow.allowed with input as request("/tenants/globex/x", {"tenant": ["acme", "globex"]})
}

test_non_string_claim_grants_nothing if {
	not tenant.allow.allowed with input as request("/tenants/1/x", {"tenant": 1})
}

test_anonymous_is_unauthorized if {
	d := tenant.allow with input as anonymous("/tenants/acme/x")
	d.http_status == 401
}

test_path_outside_the_prefix_is_not_found if {
	d := tenant.allow with input as request("/tenantsacme/x", {"tenant": "acme"})
	d.http_status == 404
}

test_empty_tenant_segment_is_not_found if {
	d := tenant.allow with input as request("/tenants//x", {"tenant": ""})
	d.http_status == 404
}

test_dot_segment_tenant_is_refused if {
	d := tenant.allow with input as request("/tenants/../admin", {"tenant": ".."})
	d.http_status == 400
}

test_settings_choose_claim_prefix_and_header if {
	d := tenant.allow with input as request("/api/orgs/o1/x", {"org_id": "o1", "tenant": "other"})
		with data.tokenwise.tenant as {"claim": "org_id", "prefix": "/api/orgs", "header": "x-org-id"}
	d.allowed == true
	d.headers == {"x-org-id": "o1"}
}

test_dot_segment_spellings_are_refused if {
	every path in ["/tenants/..;/admin", "/tenants/%2E%2e/admin", "/tenants/acme/..\\..\\globex", "/tenants/acme/..%5cx", "/tenants/acme/.%2e;x=1/y"] {
		d := tenant.allow with input as request(path, {"tenant": ["acme", "..;", "%2E%2e"]})
		d.http_status == 400
	}
}
