package examples

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// The extensions the configurations name in typed_config. Each import
	// registers its types, so protojson can resolve the Any's @type; an
	// extension missing here makes its config fail to load, never pass unseen.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// envoyConfigs are the Envoy bootstrap files in the repository; the test
// also fails when a YAML file under examples/ is claimed by no check.
var envoyConfigs = []string{"../envoy.yaml", "envoy/envoy.yaml", "envoy-http/envoy.yaml", "mcp/envoy.yaml", "envoy-mtls/envoy.yaml"}

// routerFilter must be the last HTTP filter of every connection manager.
const routerFilter = "envoy.filters.http.router"

// http2Options is the key Envoy reads a cluster's HTTP protocol options from.
const http2Options = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

func TestEnvoyConfigsAreValid(t *testing.T) {
	for _, path := range envoyConfigs {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkEnvoyConfig(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkEnvoyConfig reads a bootstrap as Envoy would and runs every check.
func checkEnvoyConfig(data []byte) error {
	b, err := loadBootstrap(data)
	if err != nil {
		return err
	}
	if err := validateTree(b); err != nil {
		return err
	}
	return checkClusters(b)
}

// loadBootstrap converts YAML to JSON and decodes it strictly: an unknown
// field or an unregistered @type is an error, as it is for Envoy.
func loadBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

// validateTree runs ValidateAll on m and on every message packed in an Any
// below it. ValidateAll stops at an Any (it cannot know the type), so
// without this walk an empty ext_authz cluster name would pass.
func validateTree(m proto.Message) error {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	return walk(m.ProtoReflect(), func(inner proto.Message) error {
		if _, isAny := inner.(*anypb.Any); !isAny {
			return nil
		}
		unpacked, err := inner.(*anypb.Any).UnmarshalNew()
		if err != nil {
			return fmt.Errorf("unpack %s: %w", inner.(*anypb.Any).GetTypeUrl(), err)
		}
		return validateTree(unpacked)
	})
}

// walk calls visit on every message set below m (not m itself), descending
// through lists and maps but not into Any, whose content visit handles.
func walk(m protoreflect.Message, visit func(proto.Message) error) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		err = walkValue(fd, v, visit)
		return err == nil
	})
	return err
}

func walkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, visit func(proto.Message) error) error {
	switch {
	case fd.IsList() && fd.Message() != nil:
		for i := 0; i < v.List().Len(); i++ {
			if err := walkMessage(v.List().Get(i).Message(), visit); err != nil {
				return err
			}
		}
	case fd.IsMap() && fd.MapValue().Message() != nil:
		var err error
		v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
			err = walkMessage(mv.Message(), visit)
			return err == nil
		})
		return err
	case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
		return walkMessage(v.Message(), visit)
	}
	return nil
}

func walkMessage(m protoreflect.Message, visit func(proto.Message) error) error {
	if err := visit(m.Interface()); err != nil {
		return err
	}
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		return nil
	}
	return walk(m, visit)
}

// everyMessage calls fn on each message below root, with every Any unpacked.
func everyMessage(root proto.Message, fn func(proto.Message)) error {
	fn(root)
	return walk(root.ProtoReflect(), func(m proto.Message) error {
		a, ok := m.(*anypb.Any)
		if !ok {
			fn(m)
			return nil
		}
		unpacked, err := a.UnmarshalNew()
		if err != nil {
			return err
		}
		return everyMessage(unpacked, fn)
	})
}

// checkClusters checks the references Envoy resolves at run time: every
// cluster a route, gRPC service or HTTP URI names is defined, each cluster's
// load_assignment carries its own name, a cluster spoken to over gRPC has
// HTTP/2, and each connection manager ends its filters with the router.
func checkClusters(b *bootstrapv3.Bootstrap) error {
	defined := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		if defined[c.GetName()] != nil {
			return fmt.Errorf("cluster %q defined twice", c.GetName())
		}
		defined[c.GetName()] = c
		if la := c.GetLoadAssignment(); la != nil && la.GetClusterName() != c.GetName() {
			return fmt.Errorf("cluster %q: load_assignment.cluster_name is %q", c.GetName(), la.GetClusterName())
		}
	}
	var errs []error
	ref := func(kind, name string) {
		if defined[name] == nil {
			errs = append(errs, fmt.Errorf("%s names cluster %q, which is not defined", kind, name))
		}
	}
	err := everyMessage(b, func(m proto.Message) {
		switch m := m.(type) {
		case *corev3.GrpcService_EnvoyGrpc:
			ref("grpc_service.envoy_grpc", m.GetClusterName())
			if c := defined[m.GetClusterName()]; c != nil && !speaksHTTP2(c) {
				errs = append(errs, fmt.Errorf("cluster %q is used for gRPC but has no http2_protocol_options", c.GetName()))
			}
		case *routev3.RouteAction:
			if name := m.GetCluster(); name != "" {
				ref("route", name)
			}
		case *routev3.WeightedCluster_ClusterWeight:
			ref("weighted_clusters", m.GetName())
		case *corev3.HttpUri:
			ref("http_uri", m.GetCluster())
		case *hcmv3.HttpConnectionManager:
			if err := checkFilterOrder(m); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// speaksHTTP2 reports whether a cluster's upstream protocol is HTTP/2, which gRPC needs.
func speaksHTTP2(c *clusterv3.Cluster) bool {
	a := c.GetTypedExtensionProtocolOptions()[http2Options]
	if a == nil {
		return false
	}
	opts := &httpv3.HttpProtocolOptions{}
	if err := a.UnmarshalTo(opts); err != nil {
		return false
	}
	return opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
}

func checkFilterOrder(m *hcmv3.HttpConnectionManager) error {
	filters := m.GetHttpFilters()
	if len(filters) == 0 || filters[len(filters)-1].GetName() != routerFilter {
		return fmt.Errorf("connection manager %q: the last HTTP filter must be %s", m.GetStatPrefix(), routerFilter)
	}
	return nil
}

// TestBrokenEnvoyConfigsFail proves each check bites: every mutation of a
// valid configuration must be refused, with an error that names the fault.
func TestBrokenEnvoyConfigsFail(t *testing.T) {
	good, err := os.ReadFile("envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkEnvoyConfig(good); err != nil {
		t.Fatalf("the base config must pass: %v", err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"typo in a field name", "failure_mode_allow: false", "failure_mode_alow: false", "failure_mode_alow"},
		{"typo in a bootstrap field", "connect_timeout: 1s\n      # gRPC", "conect_timeout: 1s\n      # gRPC", "conect_timeout"},
		{"empty ext_authz cluster name", "envoy_grpc: {cluster_name: tokenwise}", `envoy_grpc: {cluster_name: ""}`, "ClusterName"},
		{"bad enum", "transport_api_version: V3", "transport_api_version: V4", "V4"},
		{"bad status enum", "{code: ServiceUnavailable}", "{code: Unavailable}", "Unavailable"},
		{"undefined ext_authz cluster", "envoy_grpc: {cluster_name: tokenwise}", "envoy_grpc: {cluster_name: tokenwize}", `"tokenwize"`},
		{"undefined route cluster", "route: {cluster: upstream}\n                          typed_per_filter_config:\n                            envoy.filters.http.ext_authz:\n                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                              disabled: true",
			"route: {cluster: backend}\n                          typed_per_filter_config:\n                            envoy.filters.http.ext_authz:\n                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                              disabled: true", `"backend"`},
		{"unknown typed_config type", "ext_authz.v3.ExtAuthzPerRoute\n                              disabled", "ext_authz.v3.ExtAuthzPerRouteX\n                              disabled", "ExtAuthzPerRouteX"},
		{"typo inside a per-route Any", "disabled: true", "disable: true", "disable"},
		{"invalid value inside an Any", "max_request_bytes: 8192", "max_request_bytes: 0", "MaxRequestBytes"},
		{"gRPC cluster without HTTP/2", "http2_protocol_options: {}", "http_protocol_options: {}", "http2"},
		{"load assignment of another cluster", "cluster_name: upstream", "cluster_name: tokenwise", "load_assignment"},
		{"router not last", "- name: envoy.filters.http.router", "- name: envoy.filters.http.routerx", "last HTTP filter"},
		{"bad duration", "timeout: 0.5s", "timeout: half", "Duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(string(good), c.old) != 1 {
				t.Fatalf("the mutation's anchor %q must occur once in the base config", c.old)
			}
			broken := strings.Replace(string(good), c.old, c.new, 1)
			err := checkEnvoyConfig([]byte(broken))
			if err == nil {
				t.Fatal("the broken config passed")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// TestBootstrapValidateAllStopsAtAny records why validateTree exists: the
// generated ValidateAll accepts an empty ext_authz cluster name inside typed_config.
func TestBootstrapValidateAllStopsAtAny(t *testing.T) {
	good, err := os.ReadFile("envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "envoy_grpc: {cluster_name: tokenwise}", `envoy_grpc: {cluster_name: ""}`, 1)
	b, err := loadBootstrap([]byte(broken))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Bootstrap.ValidateAll now descends into Any (%v); validateTree may be simplified", err)
	}
	if err := validateTree(b); err == nil {
		t.Fatal("validateTree accepted an empty ext_authz cluster name")
	}
}

// TestEveryExampleFileIsChecked fails when a configuration file under
// examples/ is claimed by no check, so a new example cannot go untested.
func TestEveryExampleFileIsChecked(t *testing.T) {
	claimed := map[string]bool{}
	for _, list := range [][]string{envoyConfigs, manifestFiles(), tokenwiseConfigs, proxyConfigs, observabilityFiles} {
		for _, p := range list {
			claimed[filepath.Clean(p)] = true
		}
	}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(path)
		if (ext == ".yaml" || ext == ".yml") && !claimed[path] {
			t.Errorf("%s is checked by no test: add it to a list in this package's tests", path)
		}
		if ext == ".json" && !strings.Contains(path, "policies") && !claimed[path] {
			t.Errorf("%s: JSON data outside a policies directory is checked by no test", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(envoyConfigs, "../envoy.yaml") {
		t.Error("the quick-start envoy.yaml must be checked")
	}
}

// TestDockerfileIsStaticAndNonRoot checks the image recipe for what the
// Kubernetes manifests rely on: a static binary and a non-root user that
// matches their runAsUser.
func TestDockerfileIsStaticAndNonRoot(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/tokenwise", "USER 65532:65532", ":nonroot", "-X main.version=${VERSION}"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat("../cmd/tokenwise/main.go"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/tokenwise: %v", err)
	}
}
