package envoy.authz_test

import data.envoy.authz

request(method, path, scopes) := {
	"attributes": {"request": {"http": {"method": method}}},
	"parsed_path": path,
	"token": {"scopes": scopes},
}

test_tools_scope_allows if authz.allow.allowed with input as request("POST", ["mcp"], ["mcp:tools"])

test_missing_scope_denies if not authz.allow.allowed with input as request("POST", ["mcp"], ["profile"])

test_no_token_denies if not authz.allow.allowed with input as {"attributes": {"request": {"http": {"method": "POST"}}}, "parsed_path": ["mcp"], "token": null}

test_other_paths_deny if not authz.allow.allowed with input as request("GET", ["admin"], ["mcp:tools"])
