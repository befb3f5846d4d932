package deploy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kustomizations the kit ships, each rendered as `kubectl apply -k`
// would. The base alone lacks what an overlay adds (Secrets, a policy); the
// example completes it, with or without the component for clusters whose
// kubelet probes gRPC over TLS.
var kustomizations = []struct {
	name       string
	dir        string
	components []string
	complete   bool // everything the pods reference exists
	// httpLiveness: the liveness probe is /healthz rather than the gRPC
	// probe (components/liveness-healthz).
	httpLiveness bool
}{
	{name: "base", dir: "base"},
	{name: "example", dir: "example", complete: true},
	{name: "example+grpc-probe-tls", dir: "example", components: []string{"components/grpc-probe-tls"}, complete: true},
	{name: "example+liveness-healthz", dir: "example", components: []string{"components/liveness-healthz"}, complete: true, httpLiveness: true},
}

func renderKustomization(t *testing.T, dir string, components []string) *objects {
	t.Helper()
	if len(components) == 0 {
		return render(t, filepath.Join(kubernetesDir, dir))
	}
	return renderWithComponents(t, dir, components...)
}

// TestDecodeStrictlyRefuses shows that the decoding the other tests rely on
// is strict: each of these mistakes fails.
func TestDecodeStrictlyRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc string }{
		{"misspelt field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 1, targetprot: 2}]\n"},
		{"field in the wrong case", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{Port: 1}]\n"},
		{"field at the wrong level", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      readOnlyRootFilesystem: true\n      containers: [{name: c}]\n"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x, a: y}\n"},
		{"malformed quantity", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: c, resources: {requests: {cpu: one}}}]\n"},
		{"unknown kind", "apiVersion: v1\nkind: Servcie\nmetadata: {name: s}\n"},
		{"kind the kit does not hold", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"},
		{"Certificate field outside cert-manager's API", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {secretName: s, dnsName: [a], issuerRef: {name: i}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := decodeStrictly(t, []byte(tt.doc), new(objects)); err == nil {
				t.Errorf("decodeStrictly(%q) = nil, want an error", tt.doc)
			}
		})
	}
}

// TestManifests renders each kustomization, decoding every object strictly
// (render fails on any unknown field), and checks the Deployment against
// README › Sizing, Health and TLS, and the objects against each other.
func TestManifests(t *testing.T) {
	t.Parallel()
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			objs := renderKustomization(t, k.dir, k.components)
			d := only(t, "Deployments", objs.deployments)
			c := container(t, d, "encryptiond")
			t.Run("security", func(t *testing.T) { checkSecurity(t, d, c) })
			t.Run("sizing", func(t *testing.T) { checkSizing(t, c) })
			t.Run("probes", func(t *testing.T) { checkProbes(t, c, k.httpLiveness) })
			t.Run("credentials", func(t *testing.T) { checkCredentials(t, c) })
			t.Run("availability", func(t *testing.T) { checkAvailability(t, objs, d, c) })
			t.Run("selectors and ports", func(t *testing.T) { checkSelectors(t, objs, d, c) })
			if k.complete {
				t.Run("references", func(t *testing.T) { checkReferences(t, objs, d) })
				t.Run("certificate", func(t *testing.T) { checkCertificate(t, objs, d) })
			}
		})
	}
}

// checkSecurity: non-root, read-only root filesystem, no privilege
// escalation, no capabilities, the runtime's seccomp profile, no API token:
// the "restricted" Pod Security Standard and then some.
func checkSecurity(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	pod, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	if pod == nil || sc == nil {
		t.Fatalf("pod securityContext %v, container securityContext %v: want both", pod, sc)
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	is := func(p *int64, v int64) bool { return p != nil && *p == v }
	checks := []struct {
		what string
		ok   bool
	}{
		{"pod runAsNonRoot", isTrue(pod.RunAsNonRoot)},
		{"pod runAsUser 65532 (distroless nonroot, the Dockerfile's USER)", is(pod.RunAsUser, 65532)},
		{"pod seccompProfile RuntimeDefault", pod.SeccompProfile != nil && pod.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"container runAsNonRoot", isTrue(sc.RunAsNonRoot)},
		{"container runAsUser 65532", is(sc.RunAsUser, 65532)},
		{"container readOnlyRootFilesystem", isTrue(sc.ReadOnlyRootFilesystem)},
		{"container allowPrivilegeEscalation false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"container privileged unset or false", sc.Privileged == nil || !*sc.Privileged},
		{"container drops ALL capabilities and adds none", sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0},
		{"container seccompProfile RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"automountServiceAccountToken false", d.Spec.Template.Spec.AutomountServiceAccountToken != nil && !*d.Spec.Template.Spec.AutomountServiceAccountToken},
		{"no host namespaces", !d.Spec.Template.Spec.HostNetwork && !d.Spec.Template.Spec.HostPID && !d.Spec.Template.Spec.HostIPC},
		{"the image's entrypoint runs (no command)", len(c.Command) == 0},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("want %s", ck.what)
		}
	}
	// Secret files are 0440, readable through the pod's fsGroup only.
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
			t.Errorf("volume %s: defaultMode %v, want 0440 (kustomize and YAML read it as octal)", v.Name, v.Secret.DefaultMode)
		}
		if !is(pod.FSGroup, 65532) {
			t.Errorf("volume %s has mode 0440 but the pod's fsGroup is %v, want 65532, or the daemon cannot read it", v.Name, pod.FSGroup)
		}
	}
}

// checkSizing: README › Sizing says one CPU; about 21 MB idle and up to
// 80 MB with 1,000 calls in flight; GOMEMLIMIT about 90% of the limit.
func checkSizing(t *testing.T, c *corev1.Container) {
	req, lim := c.Resources.Requests, c.Resources.Limits
	one := resource.MustParse("1")
	if cpu := req[corev1.ResourceCPU]; cpu.Cmp(one) != 0 {
		t.Errorf("cpu request %v, want 1 (README › Sizing)", cpu.String())
	}
	if cpu := lim[corev1.ResourceCPU]; cpu.Cmp(one) != 0 {
		t.Errorf("cpu limit %v, want 1: Go then sets GOMAXPROCS=1 itself (README › Sizing)", cpu.String())
	}
	peak := resource.MustParse("80Mi")
	memReq, memLim := req[corev1.ResourceMemory], lim[corev1.ResourceMemory]
	if memReq.Cmp(peak) < 0 {
		t.Errorf("memory request %v, want at least the 80 MB measured with 1,000 calls in flight", memReq.String())
	}
	if memLim.Cmp(memReq) < 0 {
		t.Errorf("memory limit %v below the request %v", memLim.String(), memReq.String())
	}
	v, ok := envValue(c, "GOMEMLIMIT")
	if !ok {
		t.Fatalf("no GOMEMLIMIT: README › Sizing recommends about 90%% of the memory limit")
	}
	n, err := parseGoMemLimit(v)
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", v, err)
	}
	if lo, hi := peak.Value(), memLim.Value()*95/100; n < lo || n > hi {
		t.Errorf("GOMEMLIMIT %q = %d bytes, want between the 80 MiB peak (%d) and 95%% of the memory limit (%d)", v, n, lo, hi)
	}
}

// parseGoMemLimit parses GOMEMLIMIT as the Go runtime does: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSuffix(s, u.suffix), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive number of bytes with B, KiB, MiB, GiB or TiB")
	}
	return n * factor, nil
}

// envValue returns the literal value of the container's variable name.
func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// checkProbes: liveness is the kubelet's native gRPC probe on the health
// service (or /healthz with httpLiveness); readiness is /readyz, over HTTPS
// when the daemon serves TLS.
// Whether the binary answers them is TestKubeletRunsDeployment's business.
func checkProbes(t *testing.T, c *corev1.Container, httpLiveness bool) {
	args := parseArgs(t, c.Args)
	tls := args.has("tls-cert")
	lp, rp := c.LivenessProbe, c.ReadinessProbe
	if httpLiveness {
		if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" {
			t.Errorf("livenessProbe %v, want httpGet /healthz", lp)
		}
	} else if lp == nil || lp.GRPC == nil {
		t.Errorf("livenessProbe %v, want the native grpc probe", lp)
	} else {
		if lp.GRPC.Service != nil && *lp.GRPC.Service != "" && *lp.GRPC.Service != "atlas.encryption.v1.EncryptionService" {
			t.Errorf("liveness grpc service %q: the health server knows \"\" and atlas.encryption.v1.EncryptionService", *lp.GRPC.Service)
		}
		if _, ok := containerPort(c, intstr.FromInt32(lp.GRPC.Port)); !ok {
			t.Errorf("liveness grpc port %d is not a container port", lp.GRPC.Port)
		}
		if tls && lp.GRPC.Port == mustPort(t, args, "grpc-addr") && (lp.GRPC.Mode == nil || *lp.GRPC.Mode != corev1.GRPCProbeModeTLS) {
			t.Errorf("liveness grpc probe on the TLS gRPC port %d in plaintext: it can never pass", lp.GRPC.Port)
		}
	}
	if rp == nil || rp.HTTPGet == nil {
		t.Fatalf("readinessProbe %v, want httpGet /readyz", rp)
	}
	if rp.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness path %q, want /readyz (200 only while the daemon serves)", rp.HTTPGet.Path)
	}
	wantScheme := corev1.URISchemeHTTP
	if tls {
		wantScheme = corev1.URISchemeHTTPS
	}
	if rp.HTTPGet.Scheme != wantScheme {
		t.Errorf("readiness scheme %q, want %q (-tls-cert given: %v)", rp.HTTPGet.Scheme, wantScheme, tls)
	}
	if p, ok := containerPort(c, rp.HTTPGet.Port); !ok || p.ContainerPort != mustPort(t, args, "http-addr") {
		t.Errorf("readiness port %v, want the -http-addr port %d", rp.HTTPGet.Port.String(), mustPort(t, args, "http-addr"))
	}
}

// containerPort resolves a probe's or Service's port, by name or number.
func containerPort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// checkCredentials: exactly one pair of Atlas credentials, from a Secret,
// never a literal.
func checkCredentials(t *testing.T, c *corev1.Container) {
	var names []string
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "MONGODB_ATLAS_") {
			continue
		}
		names = append(names, e.Name)
		if e.Name != "MONGODB_ATLAS_BASE_URL" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s is not from a Secret (secretKeyRef)", e.Name)
		}
	}
	slices.Sort(names)
	sa := []string{"MONGODB_ATLAS_CLIENT_ID", "MONGODB_ATLAS_CLIENT_SECRET"}
	key := []string{"MONGODB_ATLAS_PRIVATE_API_KEY", "MONGODB_ATLAS_PUBLIC_API_KEY"}
	if !slices.Equal(names, sa) && !slices.Equal(names, key) {
		t.Errorf("Atlas variables %v, want one pair: %v (a service account) or %v", names, sa, key)
	}
}

// shutdownOverrun is how long the daemon may run after -shutdown-timeout:
// daemon.ShutdownOverrun (server/daemon/shutdown.go), which this module
// cannot import.
const shutdownOverrun = 12 * time.Second

// checkAvailability: several replicas, a budget that keeps one serving,
// rolling updates that never go below the replica count, and a grace period
// that covers the preStop pause, -shutdown-timeout and the daemon's overrun
// after it.
func checkAvailability(t *testing.T, objs *objects, d *appsv1.Deployment, c *corev1.Container) {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas < 2 {
		t.Errorf("replicas %d, want at least 2", replicas)
	}
	pdb := only(t, "PodDisruptionBudgets", objs.pdbs)
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.Type != intstr.Int || mu.IntVal < 1 || mu.IntVal >= replicas {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1 to %d", mu, replicas-1)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %v, want maxUnavailable 0", ru)
	}
	shutdown := 15 * time.Second // the daemon's default
	if v, ok := parseArgs(t, c.Args).value("shutdown-timeout"); ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatalf("-shutdown-timeout %q: %v", v, err)
		}
	}
	var pause time.Duration
	if l := c.Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			t.Errorf("preStop %v: the image has no shell, only the native sleep action works", l.PreStop)
		} else {
			pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	grace := 30 * time.Second
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= pause+shutdown+shutdownOverrun {
		t.Errorf("terminationGracePeriodSeconds %v, want more than preStop %v + -shutdown-timeout %v + the daemon's overrun %v", grace, pause, shutdown, shutdownOverrun)
	}
}

// checkSelectors: the Service, PDB and NetworkPolicy select the pods, and
// their ports are container ports.
func checkSelectors(t *testing.T, objs *objects, d *appsv1.Deployment, c *corev1.Container) {
	podLabels := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods' labels %v (%v)", d.Spec.Selector, podLabels, err)
	}
	if len(objs.services) == 0 {
		t.Errorf("no Service")
	}
	for _, s := range objs.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := containerPort(c, p.TargetPort); !ok {
				t.Errorf("Service %s port %s: targetPort %s is not a container port", s.Name, p.Name, p.TargetPort.String())
			}
		}
	}
	for _, p := range objs.pdbs {
		if s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s selects %v, not the pods", p.Name, p.Spec.Selector)
		}
	}
	np := only(t, "NetworkPolicies", objs.networkPolicies)
	if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || s.Empty() || !s.Matches(podLabels) {
		t.Errorf("NetworkPolicy %s selects %v, not the pods", np.Name, np.Spec.PodSelector)
	}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil {
				continue
			}
			if _, ok := containerPort(c, *p.Port); !ok {
				t.Errorf("NetworkPolicy %s: ingress port %s is not a container port", np.Name, p.Port.String())
			}
		}
	}
}

// checkReferences: every Secret, ConfigMap and ServiceAccount the pods use
// exists, or (for a TLS Secret) a cert-manager Certificate writes it.
func checkReferences(t *testing.T, objs *objects, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	hasSecret := func(name string) bool {
		return slices.ContainsFunc(objs.secrets, func(s *corev1.Secret) bool { return s.Name == name }) ||
			slices.ContainsFunc(objs.certificates, func(c *certificate) bool { return c.Spec.SecretName == name })
	}
	hasConfigMap := func(name string) bool {
		return slices.ContainsFunc(objs.configMaps, func(c *corev1.ConfigMap) bool { return c.Name == name })
	}
	if !slices.ContainsFunc(objs.serviceAccounts, func(s *corev1.ServiceAccount) bool { return s.Name == spec.ServiceAccountName }) {
		t.Errorf("ServiceAccount %q does not exist", spec.ServiceAccountName)
	}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil && !hasSecret(v.Secret.SecretName):
			t.Errorf("volume %s: Secret %q does not exist and no Certificate writes it", v.Name, v.Secret.SecretName)
		case v.ConfigMap != nil && !hasConfigMap(v.ConfigMap.Name):
			t.Errorf("volume %s: ConfigMap %q does not exist", v.Name, v.ConfigMap.Name)
		}
	}
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				s := findSecret(objs, r.Name)
				if s == nil {
					t.Errorf("%s: Secret %q does not exist", e.Name, r.Name)
				} else if _, ok := s.Data[r.Key]; !ok {
					t.Errorf("%s: Secret %q has no key %q", e.Name, r.Name, r.Key)
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if m.SubPath != "" || m.SubPathExpr != "" {
				t.Errorf("volume mount %s uses a subPath: the kubelet never updates it (rotation)", m.Name)
			}
		}
	}
}

// findSecret returns the Secret called name, or nil.
func findSecret(objs *objects, name string) *corev1.Secret {
	for _, s := range objs.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// checkCertificate: cert-manager writes the Secret the pods mount, for the
// names the Services answer to, renewed well before it expires.
func checkCertificate(t *testing.T, objs *objects, d *appsv1.Deployment) {
	var tlsSecret string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			tlsSecret = v.Secret.SecretName
		}
	}
	cert := only(t, "Certificates", objs.certificates)
	if cert.Spec.SecretName != tlsSecret {
		t.Errorf("Certificate writes Secret %q, the pods mount %q", cert.Spec.SecretName, tlsSecret)
	}
	if !slices.Contains(cert.Spec.Usages, "server auth") {
		t.Errorf("Certificate usages %v, want server auth", cert.Spec.Usages)
	}
	for _, s := range objs.services {
		for _, name := range []string{s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace + ".svc.cluster.local"} {
			if !slices.Contains(cert.Spec.DNSNames, name) {
				t.Errorf("Certificate dnsNames %v lack %s, the Service %s", cert.Spec.DNSNames, name, s.Name)
			}
		}
	}
	if cert.Spec.Duration == nil || cert.Spec.RenewBefore == nil || cert.Spec.RenewBefore.Duration >= cert.Spec.Duration.Duration {
		t.Errorf("Certificate duration %v, renewBefore %v: want both, renewal before expiry", cert.Spec.Duration, cert.Spec.RenewBefore)
	}
	if pk := cert.Spec.PrivateKey; pk == nil || pk.RotationPolicy != "Always" {
		t.Errorf("Certificate privateKey %v, want rotationPolicy Always (a new key with each renewal)", pk)
	}
}
