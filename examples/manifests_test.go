package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	secapi "istio.io/api/security/v1beta1"
	istiosecv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// manifestFiles are the Kubernetes, Istio and Envoy Gateway manifests.
func manifestFiles() []string {
	return []string{
		"kubernetes/tokenwise.yaml",
		"kubernetes/redis/tokenwise-redis.yaml",
		"kubernetes/redis-sentinel/tokenwise-redis-sentinel.yaml",
		"istio/mesh-config.yaml",
		"istio/authorization-policy.yaml",
		"istio/request-authentication.yaml",
		"envoy-gateway/gateway.yaml",
	}
}

// object is one decoded manifest document.
type object struct {
	file, kind, name, namespace string
	value                       any
}

// decoders maps apiVersion/kind to a strict decoder into the project's own Go
// type. A kind missing here is an error, so nothing is accepted unchecked.
var decoders = map[string]func([]byte) (any, error){
	"v1/Namespace":                                     strict[corev1.Namespace],
	"v1/ConfigMap":                                     strict[corev1.ConfigMap],
	"v1/Service":                                       strict[corev1.Service],
	"apps/v1/Deployment":                               strict[appsv1.Deployment],
	"apps/v1/StatefulSet":                              strict[appsv1.StatefulSet],
	"policy/v1/PodDisruptionBudget":                    strict[policyv1.PodDisruptionBudget],
	"gateway.networking.k8s.io/v1/GatewayClass":        strict[gwv1.GatewayClass],
	"gateway.networking.k8s.io/v1/Gateway":             strict[gwv1.Gateway],
	"gateway.networking.k8s.io/v1/HTTPRoute":           strict[gwv1.HTTPRoute],
	"gateway.networking.k8s.io/v1beta1/ReferenceGrant": strict[gwv1beta1.ReferenceGrant],
	"gateway.envoyproxy.io/v1alpha1/SecurityPolicy":    strict[egv1a1.SecurityPolicy],
	"security.istio.io/v1/AuthorizationPolicy":         istioCR[istiosecv1.AuthorizationPolicy](func() proto.Message { return &secapi.AuthorizationPolicy{} }),
	"security.istio.io/v1/RequestAuthentication":       istioCR[istiosecv1.RequestAuthentication](func() proto.Message { return &secapi.RequestAuthentication{} }),
	"install.istio.io/v1alpha1/IstioOperator":          istioOperator,
}

// strict decodes YAML into T, failing on any field T does not have.
func strict[T any](doc []byte) (any, error) {
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

// istioCR checks an Istio custom resource twice: the client-go wrapper
// (apiVersion, kind, metadata) strictly, then the spec with protojson,
// because Istio's own JSON decoding of specs ignores unknown fields.
func istioCR[T any](spec func() proto.Message) func([]byte) (any, error) {
	return func(doc []byte) (any, error) {
		if _, err := strict[T](doc); err != nil {
			return nil, err
		}
		var raw struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &raw); err != nil {
			return nil, err
		}
		m := spec()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw.Spec, m); err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
		return m, nil
	}
}

// istioOperator checks an IstioOperator that sets only meshConfig, the
// meshConfig against Istio's MeshConfig message.
func istioOperator(doc []byte) (any, error) {
	var op struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       struct {
			MeshConfig json.RawMessage `json:"meshConfig"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(doc, &op); err != nil {
		return nil, err
	}
	mesh := &meshv1alpha1.MeshConfig{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(op.Spec.MeshConfig, mesh); err != nil {
		return nil, fmt.Errorf("meshConfig: %w", err)
	}
	return mesh, nil
}

// splitDocs splits a multi-document YAML file, dropping comment-only parts.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, part := range bytes.Split(data, []byte("\n---\n")) {
		part = append(part, '\n') // the split took the newline that ends a block scalar
		js, err := yaml.YAMLToJSON(part)
		if err == nil && string(js) == "null" {
			continue
		}
		docs = append(docs, part)
	}
	return docs
}

// decodeAll decodes every document of every file.
func decodeAll(files map[string][]byte) ([]object, error) {
	var objs []object
	for _, file := range slices.Sorted(maps.Keys(files)) {
		for n, doc := range splitDocs(files[file]) {
			var head struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Metadata   metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", file, n+1, err)
			}
			decode := decoders[head.APIVersion+"/"+head.Kind]
			if decode == nil {
				return nil, fmt.Errorf("%s document %d: no check for %s %s", file, n+1, head.APIVersion, head.Kind)
			}
			v, err := decode(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", file, head.Kind, head.Metadata.Name, err)
			}
			objs = append(objs, object{file: file, kind: head.Kind, name: head.Metadata.Name, namespace: head.Metadata.Namespace, value: v})
		}
	}
	return objs, nil
}

func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range manifestFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files[f] = data
	}
	return files
}

// checkManifests decodes every manifest strictly, then checks what only the
// whole set can show: references between objects and tokenwise's needs.
func checkManifests(files map[string][]byte) error {
	objs, err := decodeAll(files)
	if err != nil {
		return err
	}
	var errs []error
	for file := range files {
		inFile := filterObjs(objs, func(o object) bool { return o.file == file })
		errs = append(errs, checkWorkloads(file, inFile)...)
	}
	errs = append(errs, checkIstio(objs)...)
	errs = append(errs, checkGateway(objs)...)
	return errors.Join(errs...)
}

func filterObjs(objs []object, keep func(object) bool) []object {
	var out []object
	for _, o := range objs {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func all[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// checkWorkloads checks each Deployment and StatefulSet in a file against
// the Services, ConfigMaps and PodDisruptionBudgets beside it.
func checkWorkloads(file string, objs []object) []error {
	var errs []error
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range all[corev1.ConfigMap](objs) {
		configMaps[cm.Namespace+"/"+cm.Name] = cm
	}
	deployments := all[appsv1.Deployment](objs)
	for _, st := range all[appsv1.StatefulSet](objs) {
		errs = append(errs, checkStatefulSet(file, st, all[corev1.Service](objs))...)
		// A StatefulSet is checked as the Deployment of the same pods would be.
		deployments = append(deployments, &appsv1.Deployment{ObjectMeta: st.ObjectMeta, Spec: appsv1.DeploymentSpec{
			Replicas: st.Spec.Replicas, Selector: st.Spec.Selector, Template: st.Spec.Template}})
	}
	for _, d := range deployments {
		errs = append(errs, checkDeployment(file, d, configMaps)...)
	}
	for _, s := range all[corev1.Service](objs) {
		if err := checkService(file, s, deployments); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range all[policyv1.PodDisruptionBudget](objs) {
		if err := checkPDB(file, p, deployments); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func checkDeployment(file string, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: deployment %s: %s", file, d.Name, fmt.Sprintf(format, args...)))
	}
	pod := d.Spec.Template.Spec
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		fail("selector does not match the pod template's labels")
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		fail("pod must set runAsNonRoot: true")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("container %s: want readOnlyRootFilesystem: true and allowPrivilegeEscalation: false", c.Name)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			fail("container %s: want memory requests and limits", c.Name)
		}
		if c.Name == "tokenwise" {
			errs = append(errs, checkProbes(file, d.Name, c)...)
		}
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := configMaps[d.Namespace+"/"+v.ConfigMap.Name]
		if cm == nil {
			fail("volume %s names ConfigMap %s, not defined in the file", v.Name, v.ConfigMap.Name)
			continue
		}
		for _, item := range v.ConfigMap.Items {
			if _, ok := cm.Data[item.Key]; !ok {
				fail("volume %s: ConfigMap %s has no key %s", v.Name, cm.Name, item.Key)
			}
		}
	}
	return errs
}

// checkStatefulSet wants the StatefulSet's serviceName to be a headless
// Service in the file (the pods' stable names come from it) and every
// volume a container mounts to be a pod volume or a claim template.
func checkStatefulSet(file string, st *appsv1.StatefulSet, services []*corev1.Service) []error {
	var errs []error
	if !slices.ContainsFunc(services, func(s *corev1.Service) bool {
		return s.Namespace == st.Namespace && s.Name == st.Spec.ServiceName && s.Spec.ClusterIP == corev1.ClusterIPNone
	}) {
		errs = append(errs, fmt.Errorf("%s: statefulset %s: serviceName %q is not a headless Service in the file", file, st.Name, st.Spec.ServiceName))
	}
	volumes := map[string]bool{}
	for _, v := range st.Spec.Template.Spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range st.Spec.VolumeClaimTemplates {
		volumes[c.Name] = true
	}
	for _, c := range st.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errs = append(errs, fmt.Errorf("%s: statefulset %s: container %s mounts volume %s, which is not defined", file, st.Name, c.Name, m.Name))
			}
		}
	}
	return errs
}

// checkProbes wants liveness on /healthz and readiness on /readyz, on a port the container declares.
func checkProbes(file, name string, c corev1.Container) []error {
	var errs []error
	for _, p := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			errs = append(errs, fmt.Errorf("%s: deployment %s: %s must GET %s", file, name, p.kind, p.path))
			continue
		}
		if !hasPort(c, p.probe.HTTPGet.Port.String()) {
			errs = append(errs, fmt.Errorf("%s: deployment %s: %s port %s is not a container port", file, name, p.kind, p.probe.HTTPGet.Port.String()))
		}
	}
	return errs
}

func hasPort(c corev1.Container, port string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == port || fmt.Sprint(p.ContainerPort) == port
	})
}

// checkService wants the selector to pick a Deployment's pods and every
// target port to be one those pods declare.
func checkService(file string, s *corev1.Service, deployments []*appsv1.Deployment) error {
	for _, d := range deployments {
		if d.Namespace != s.Namespace || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return hasPort(c, p.TargetPort.String()) }) {
				return fmt.Errorf("%s: service %s: targetPort %s is not a port of deployment %s", file, s.Name, p.TargetPort.String(), d.Name)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: service %s selects no deployment in the file", file, s.Name)
}

// checkPDB wants the budget to select a Deployment and still allow a drain.
func checkPDB(file string, p *policyv1.PodDisruptionBudget, deployments []*appsv1.Deployment) error {
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil {
		return fmt.Errorf("%s: pdb %s: %w", file, p.Name, err)
	}
	for _, d := range deployments {
		if d.Namespace != p.Namespace || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if m := p.Spec.MinAvailable; m != nil && m.IntValue() >= int(replicas) {
			return fmt.Errorf("%s: pdb %s: minAvailable %d of %d replicas blocks every drain", file, p.Name, m.IntValue(), replicas)
		}
		return nil
	}
	return fmt.Errorf("%s: pdb %s selects no deployment in the file", file, p.Name)
}

// tokenwiseService is the Service every mesh and gateway example points at.
const (
	tokenwiseNamespace = "tokenwise"
	tokenwiseService   = "tokenwise"
	tokenwiseGRPCPort  = 9191
)

// serviceDefined reports whether a manifest defines Service ns/name with a port.
func serviceDefined(objs []object, ns, name string, port int32) bool {
	return slices.ContainsFunc(all[corev1.Service](objs), func(s *corev1.Service) bool {
		return s.Namespace == ns && s.Name == name && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
	})
}

// checkIstio wants every CUSTOM AuthorizationPolicy to name a provider the
// mesh config defines, and that provider to point at tokenwise's Service.
func checkIstio(objs []object) []error {
	var errs []error
	providers := map[string]*meshv1alpha1.MeshConfig_ExtensionProvider{}
	for _, mesh := range all[meshv1alpha1.MeshConfig](objs) {
		for _, p := range mesh.GetExtensionProviders() {
			providers[p.GetName()] = p
			grpc := p.GetEnvoyExtAuthzGrpc()
			if grpc == nil {
				continue
			}
			want := tokenwiseService + "." + tokenwiseNamespace + ".svc.cluster.local"
			if grpc.GetService() != want || grpc.GetPort() != tokenwiseGRPCPort || grpc.GetFailOpen() {
				errs = append(errs, fmt.Errorf("istio provider %s: want service %s port %d, failOpen false", p.GetName(), want, tokenwiseGRPCPort))
			}
			if !serviceDefined(objs, tokenwiseNamespace, tokenwiseService, int32(grpc.GetPort())) {
				errs = append(errs, fmt.Errorf("istio provider %s: no Service %s/%s port %d in the manifests", p.GetName(), tokenwiseNamespace, tokenwiseService, grpc.GetPort()))
			}
		}
	}
	for _, ap := range all[secapi.AuthorizationPolicy](objs) {
		if ap.GetAction() != secapi.AuthorizationPolicy_CUSTOM {
			errs = append(errs, fmt.Errorf("istio AuthorizationPolicy: action %s, want CUSTOM", ap.GetAction()))
		}
		if providers[ap.GetProvider().GetName()] == nil {
			errs = append(errs, fmt.Errorf("istio AuthorizationPolicy: provider %q is not in meshConfig.extensionProviders", ap.GetProvider().GetName()))
		}
	}
	for _, ra := range all[secapi.RequestAuthentication](objs) {
		for _, rule := range ra.GetJwtRules() {
			if !rule.GetForwardOriginalToken() {
				errs = append(errs, fmt.Errorf("istio RequestAuthentication %s: forwardOriginalToken must be true, or tokenwise never sees the token", rule.GetIssuer()))
			}
		}
	}
	return errs
}

// checkGateway wants each SecurityPolicy to target a defined HTTPRoute and
// its ext_authz backend to be tokenwise's Service, granted across namespaces.
func checkGateway(objs []object) []error {
	var errs []error
	for _, o := range objs {
		sp, ok := o.value.(*egv1a1.SecurityPolicy)
		if !ok {
			continue
		}
		for _, ref := range sp.Spec.TargetRefs {
			if !slices.ContainsFunc(all[gwv1.HTTPRoute](objs), func(r *gwv1.HTTPRoute) bool {
				return string(ref.Kind) == "HTTPRoute" && r.Name == string(ref.Name) && r.Namespace == sp.Namespace
			}) {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s targets %s %s, which is not defined", sp.Name, ref.Kind, ref.Name))
			}
		}
		ext := sp.Spec.ExtAuth
		if ext == nil || ext.GRPC == nil || len(ext.GRPC.BackendRefs) == 0 {
			errs = append(errs, fmt.Errorf("SecurityPolicy %s: want extAuth.grpc.backendRefs", sp.Name))
			continue
		}
		if !slices.Contains(ext.HeadersToExtAuth, "authorization") {
			errs = append(errs, fmt.Errorf("SecurityPolicy %s: headersToExtAuth must include authorization", sp.Name))
		}
		for _, b := range ext.GRPC.BackendRefs {
			ns := sp.Namespace
			if b.Namespace != nil {
				ns = string(*b.Namespace)
			}
			if b.Port == nil || !serviceDefined(objs, ns, string(b.Name), int32(*b.Port)) {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s: backendRef %s/%s is not a defined Service port", sp.Name, ns, b.Name))
			}
			if ns != sp.Namespace && !granted(objs, sp.Namespace, ns, string(b.Name)) {
				errs = append(errs, fmt.Errorf("SecurityPolicy %s: no ReferenceGrant in %s lets it reach Service %s", sp.Name, ns, b.Name))
			}
		}
	}
	return errs
}

// granted reports whether a ReferenceGrant in toNS lets SecurityPolicies in fromNS reach Service name.
func granted(objs []object, fromNS, toNS, name string) bool {
	return slices.ContainsFunc(all[gwv1beta1.ReferenceGrant](objs), func(g *gwv1beta1.ReferenceGrant) bool {
		if g.Namespace != toNS {
			return false
		}
		from := slices.ContainsFunc(g.Spec.From, func(f gwv1beta1.ReferenceGrantFrom) bool {
			return string(f.Kind) == "SecurityPolicy" && string(f.Namespace) == fromNS
		})
		to := slices.ContainsFunc(g.Spec.To, func(t gwv1beta1.ReferenceGrantTo) bool {
			return string(t.Kind) == "Service" && (t.Name == nil || string(*t.Name) == name)
		})
		return from && to
	})
}

func TestManifestsAreValid(t *testing.T) {
	if err := checkManifests(readManifests(t)); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenManifestsFail proves each check bites.
func TestBrokenManifestsFail(t *testing.T) {
	cases := []struct {
		name, file, old, new, want string
	}{
		{"k8s field typo", "kubernetes/tokenwise.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true", "readOnlyRootFilesytem"},
		{"k8s writable root", "kubernetes/tokenwise.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"k8s root user allowed", "kubernetes/tokenwise.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"},
		{"k8s wrong readiness path", "kubernetes/tokenwise.yaml", "path: /readyz", "path: /ready", "/readyz"},
		{"k8s probe on unknown port", "kubernetes/tokenwise.yaml", "{path: /healthz, port: http}", "{path: /healthz, port: admin}", "not a container port"},
		{"k8s missing ConfigMap key", "kubernetes/tokenwise.yaml", "{key: data.json, path: policies/data.json}", "{key: routes.json, path: policies/data.json}", "no key routes.json"},
		{"k8s service port mismatch", "kubernetes/tokenwise.yaml", "targetPort: grpc", "targetPort: grpcs", "targetPort grpcs"},
		{"k8s PDB blocks drains", "kubernetes/redis/tokenwise-redis.yaml", "minAvailable: 2", "minAvailable: 3", "blocks every drain"},
		{"statefulset without its headless service", "kubernetes/redis-sentinel/tokenwise-redis-sentinel.yaml", "serviceName: redis-headless", "serviceName: redis", "not a headless Service"},
		{"statefulset mounts an undefined volume", "kubernetes/redis-sentinel/tokenwise-redis-sentinel.yaml", "{name: sentinel, mountPath: /sentinel}", "{name: state, mountPath: /sentinel}", "mounts volume state"},
		{"statefulset writable root", "kubernetes/redis-sentinel/tokenwise-redis-sentinel.yaml",
			"readOnlyRootFilesystem: true\n            capabilities: {drop: [ALL]}\n          volumeMounts:\n            - {name: sentinel,",
			"readOnlyRootFilesystem: false\n            capabilities: {drop: [ALL]}\n          volumeMounts:\n            - {name: sentinel,", "container sentinel: want readOnlyRootFilesystem"},
		{"unknown kind", "kubernetes/tokenwise.yaml", "kind: Namespace", "kind: Namespaces", "no check for v1 Namespaces"},
		{"istio spec typo", "istio/authorization-policy.yaml", "notPaths:", "notPath:", "notPath"},
		{"istio bad enum", "istio/authorization-policy.yaml", "action: CUSTOM", "action: EXTERNAL", "EXTERNAL"},
		{"istio wrapper typo", "istio/authorization-policy.yaml", "metadata:", "metdata:", "metdata"},
		{"istio undefined provider", "istio/authorization-policy.yaml", "name: tokenwise", "name: tokenwise-authz", `"tokenwise-authz"`},
		{"mesh config typo", "istio/mesh-config.yaml", "failOpen: false", "failOpn: false", "failOpn"},
		{"mesh config fails open", "istio/mesh-config.yaml", "failOpen: false", "failOpen: true", "failOpen false"},
		{"token stripped by RequestAuthentication", "istio/request-authentication.yaml", "\n      forwardOriginalToken: true", "\n      forwardOriginalToken: false", "forwardOriginalToken"},
		{"gateway field typo", "envoy-gateway/gateway.yaml", "headersToExtAuth:", "headersToExtAut:", "headersToExtAut"},
		{"gateway undefined backend", "envoy-gateway/gateway.yaml", "        - name: tokenwise\n          namespace: tokenwise", "        - name: authz\n          namespace: tokenwise", "backendRef tokenwise/authz"},
		{"gateway missing grant", "envoy-gateway/gateway.yaml", "namespace: shop\n  to:", "namespace: default\n  to:", "no ReferenceGrant"},
		{"gateway undefined route", "envoy-gateway/gateway.yaml", "kind: HTTPRoute\n      name: orders", "kind: HTTPRoute\n      name: order", "not defined"},
		{"gateway API typo", "envoy-gateway/gateway.yaml", "gatewayClassName: eg", "gatewayClass: eg", "gatewayClass"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := readManifests(t)
			if bytes.Count(files[c.file], []byte(c.old)) != 1 {
				t.Fatalf("anchor %q must occur once in %s", c.old, c.file)
			}
			files[c.file] = bytes.Replace(files[c.file], []byte(c.old), []byte(c.new), 1)
			err := checkManifests(files)
			if err == nil {
				t.Fatal("the broken manifest passed")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// TestConfigMapScriptsParse runs `sh -n` on every shell script a ConfigMap
// carries, as the containers would run them.
func TestConfigMapScriptsParse(t *testing.T) {
	objs, err := decodeAll(readManifests(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cm := range all[corev1.ConfigMap](objs) {
		for key, script := range cm.Data {
			if !strings.HasSuffix(key, ".sh") {
				continue
			}
			n++
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("ConfigMap %s key %s: sh -n: %v\n%s", cm.Name, key, err, out)
			}
		}
	}
	if n == 0 {
		t.Fatal("no scripts found")
	}
}
