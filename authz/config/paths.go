package config

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// resolvePaths makes the relative file paths the file itself wrote relative
// to the file's directory (dir, absolute), not to the working directory:
// `tokenwise serve --config /etc/tokenwise/config.yaml` reads the same
// policies from anywhere. Defaults and flags are left as they are.
func (c *Config) resolvePaths(root *yaml.Node, dir string) {
	resolve := func(p *string, keys ...string) {
		if *p != "" && !filepath.IsAbs(*p) && has(root, keys...) {
			*p = filepath.Join(dir, *p)
		}
	}
	if has(root, "policy", "paths") {
		for i := range c.Policy.Paths {
			resolve(&c.Policy.Paths[i], "policy", "paths")
		}
	}
	resolve(&c.GRPC.TLS.CertFile, "grpc", "tls", "cert_file")
	resolve(&c.GRPC.TLS.KeyFile, "grpc", "tls", "key_file")
	resolve(&c.GRPC.TLS.ClientCAFile, "grpc", "tls", "client_ca_file")
	resolve(&c.Admin.ClientCAFile, "admin", "client_ca_file")
}

// has reports whether the document sets the value at keys (mapping keys only).
func has(root *yaml.Node, keys ...string) bool {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range keys {
		n = child(n, k)
		if n == nil {
			return false
		}
	}
	return !isNull(n)
}

// child is the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
