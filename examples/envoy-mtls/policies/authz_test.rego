package envoy.authz_test

import data.envoy.authz

test_internal_needs_mtls if {
	authz.allow.allowed with input as {"parsed_path": ["internal", "jobs"], "token": {"proof": "mtls", "scopes": []}}
	not authz.allow.allowed with input as {"parsed_path": ["internal", "jobs"], "token": {"proof": "dpop", "scopes": []}}
}

test_orders_need_dpop_and_scope if {
	authz.allow.allowed with input as {"parsed_path": ["orders", "1"], "token": {"proof": "dpop", "scopes": ["orders:read"]}}
	not authz.allow.allowed with input as {"parsed_path": ["orders", "1"], "token": {"proof": "dpop", "scopes": []}}
	not authz.allow.allowed with input as {"parsed_path": ["orders", "1"], "token": {"proof": "mtls", "scopes": ["orders:read"]}}
}

test_no_token_denied if {
	not authz.allow.allowed with input as {"parsed_path": ["orders", "1"], "token": null}
}
