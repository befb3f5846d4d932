package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// root is the repository root, the parent of this module.
const root = ".."

// kubernetesDir holds the kit's Kustomize base, components and example.
var kubernetesDir = filepath.Join(root, "deploy", "kubernetes")

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// objects are the rendered objects of one kustomization, each decoded
// strictly into its Go type.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	serviceAccounts []*corev1.ServiceAccount
	namespaces      []*corev1.Namespace
	certificates    []*certificate
}

// scheme knows the kinds the kit may contain. Anything else is an error: a
// new kind needs its Go type here first.
func scheme(t *testing.T) *k8sruntime.Scheme {
	t.Helper()
	s := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// decodeStrictly decodes one YAML object into its k8s.io/api type, or into
// certificate for cert-manager's Certificate. An unknown or misspelt field, a
// field spelt in the wrong case, a duplicate field and an unknown kind all
// fail.
func decodeStrictly(t *testing.T, doc []byte, into *objects) error {
	t.Helper()
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	if head.APIVersion == certManagerAPIVersion && head.Kind == "Certificate" {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return err
		}
		c := new(certificate)
		strict, err := kjson.UnmarshalStrict(js, c)
		if err != nil {
			return err
		}
		if len(strict) > 0 {
			return errors.Join(strict...)
		}
		into.certificates = append(into.certificates, c)
		return nil
	}
	codecs := serializer.NewCodecFactory(scheme(t), serializer.EnableStrict)
	obj, _, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
	if err != nil {
		return err
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		into.deployments = append(into.deployments, o)
	case *corev1.Service:
		into.services = append(into.services, o)
	case *policyv1.PodDisruptionBudget:
		into.pdbs = append(into.pdbs, o)
	case *networkingv1.NetworkPolicy:
		into.networkPolicies = append(into.networkPolicies, o)
	case *corev1.ConfigMap:
		into.configMaps = append(into.configMaps, o)
	case *corev1.Secret:
		into.secrets = append(into.secrets, o)
	case *corev1.ServiceAccount:
		into.serviceAccounts = append(into.serviceAccounts, o)
	case *corev1.Namespace:
		into.namespaces = append(into.namespaces, o)
	default:
		return fmt.Errorf("%s %s: not a kind the kit is expected to hold", head.APIVersion, head.Kind)
	}
	return nil
}

// render builds the kustomization in dir with kustomize's own library (what
// `kubectl apply -k` runs) and decodes every object strictly.
func render(t *testing.T, dir string) *objects {
	t.Helper()
	return renderFS(t, filesys.MakeFsOnDisk(), dir)
}

func renderFS(t *testing.T, fs filesys.FileSystem, dir string) *objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := new(objects)
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("kustomize build %s: %s: %v", dir, r.CurId(), err)
		}
		if err := decodeStrictly(t, doc, objs); err != nil {
			t.Errorf("kustomize build %s: %s: %v\n%s", dir, r.CurId(), err, doc)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return objs
}

// renderWithComponents renders the kustomization dir (relative to
// kubernetesDir) with components (likewise) added, through a kustomization
// beside them in an in-memory copy of kubernetesDir.
func renderWithComponents(t *testing.T, dir string, components ...string) *objects {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir(kubernetesDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(kubernetesDir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fs.WriteFile(filepath.Join("/kubernetes", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../%s\ncomponents:\n", dir)
	for _, c := range components {
		fmt.Fprintf(&b, "  - ../%s\n", c)
	}
	if err := fs.WriteFile("/kubernetes/test-wrapper/kustomization.yaml", []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return renderFS(t, fs, "/kubernetes/test-wrapper")
}

// certManagerAPIVersion is cert-manager's API, a CRD that k8s.io/api lacks.
const certManagerAPIVersion = "cert-manager.io/v1"

// certificate is the part of cert-manager's Certificate (cert-manager.io/v1)
// that the kit uses, so that it is decoded as strictly as the built-in kinds:
// a field outside it fails the test. Before adding one, check its spelling in
// cert-manager's API reference; importing cert-manager's Go module instead
// would bring in far more than this test needs.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              certificateSpec `json:"spec"`
}

type certificateSpec struct {
	SecretName     string `json:"secretName"`
	SecretTemplate *struct {
		Annotations map[string]string `json:"annotations,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
	} `json:"secretTemplate,omitempty"`
	Duration    *metav1.Duration `json:"duration,omitempty"`
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
	PrivateKey  *struct {
		Algorithm      string `json:"algorithm,omitempty"`
		Size           int    `json:"size,omitempty"`
		Encoding       string `json:"encoding,omitempty"`
		RotationPolicy string `json:"rotationPolicy,omitempty"`
	} `json:"privateKey,omitempty"`
	Usages      []string `json:"usages,omitempty"`
	CommonName  string   `json:"commonName,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
	IPAddresses []string `json:"ipAddresses,omitempty"`
	URIs        []string `json:"uris,omitempty"`
	IsCA        bool     `json:"isCA,omitempty"`
	IssuerRef   struct {
		Name  string `json:"name"`
		Kind  string `json:"kind,omitempty"`
		Group string `json:"group,omitempty"`
	} `json:"issuerRef"`
}

// The binaries built from the parent module, once per test run.
var (
	buildOnce  sync.Once
	builtDir   string
	buildError error
)

// binaries are the parent module's programs the tests run.
type binaries struct{ encryptiond, emulator string }

// buildBinaries builds encryptiond and atlas-emulator from the repository
// root (once for all tests).
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	buildOnce.Do(func() {
		builtDir, buildError = os.MkdirTemp("", "encryptiond-deploy-test-")
		if buildError != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goBin(), "-C", root, "build", "-o", builtDir+string(filepath.Separator), "./cmd/encryptiond", "./cmd/atlas-emulator").CombinedOutput()
		if err != nil {
			buildError = fmt.Errorf("go build ./cmd/encryptiond ./cmd/atlas-emulator: %v\n%s", err, out)
		}
	})
	if buildError != nil {
		t.Fatal(buildError)
	}
	return binaries{encryptiond: filepath.Join(builtDir, "encryptiond"), emulator: filepath.Join(builtDir, "atlas-emulator")}
}

// goBin is the go command of the toolchain running the tests.
func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// usage is what the binary prints for -help: its flags and environment.
type usage struct {
	flags map[string]bool // names without the dash
	env   map[string]bool // MONGODB_ATLAS_* variables it reads
	text  string
}

var (
	helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)`)
	helpEnv  = regexp.MustCompile(`\bMONGODB_ATLAS_[A-Z_]+\b`)
)

// help runs `encryptiond -help` and parses its flags and variables.
func help(t *testing.T, bin string) usage {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, "-help").Output()
	if err != nil {
		t.Fatalf("encryptiond -help: %v", err)
	}
	u := usage{flags: map[string]bool{}, env: map[string]bool{}, text: string(out)}
	for _, m := range helpFlag.FindAllStringSubmatch(u.text, -1) {
		u.flags[m[1]] = true
	}
	for _, v := range helpEnv.FindAllString(u.text, -1) {
		u.env[v] = true
	}
	if len(u.flags) < 10 || !u.flags["grpc-addr"] || !u.env["MONGODB_ATLAS_CLIENT_ID"] {
		t.Fatalf("encryptiond -help printed %q: cannot find its flags and variables", u.text)
	}
	return u
}

// container returns the Deployment's container called name.
func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("Deployment %s has no container %q", d.Name, name)
	}
	return &d.Spec.Template.Spec.Containers[i]
}

// only returns the one element of s, failing otherwise.
func only[T any](t *testing.T, what string, s []T) T {
	t.Helper()
	if len(s) != 1 {
		t.Fatalf("%d %s, want 1", len(s), what)
	}
	return s[0]
}

// readFile reads a file of the repository.
func readFile(t *testing.T, path ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{root}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
