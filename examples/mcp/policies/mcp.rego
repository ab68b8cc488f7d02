# The MCP server's policy: the endpoint needs a token with the mcp:tools
# scope. tokenwise has already checked the signature, iss, exp and that aud
# names https://mcp.example.com/mcp; the metadata document is answered by
# tokenwise before the policy is asked.
package envoy.authz

default allow := {"allowed": false, "reason": "the MCP endpoint needs a token with the mcp:tools scope"}

allow := {"allowed": true} if {
	input.parsed_path == ["mcp"]
	input.attributes.request.http.method in {"GET", "POST", "DELETE"}
	"mcp:tools" in input.token.scopes
}
