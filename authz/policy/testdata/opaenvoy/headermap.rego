package envoy.authz

default allow := false

allow if {
	some line in input.attributes.request.http.headerMap.headers
	line.key == "x-api-key"
}

allow if input.attributes.metadataContext.filterMetadata.jwt.user == "bob"

allow if input.version.ext_authz == "http"
