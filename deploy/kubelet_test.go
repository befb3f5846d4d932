package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// pendingFlags are flags the manifests use that the binary does not serve
// yet: product changes the kit is designed for, each with what it is. While
// a flag is pending, TestManifestFlags accepts it and TestKubeletRunsDeployment
// skips the kustomizations that use it; once the binary serves it,
// TestPendingFlags fails until the entry is removed here.
var pendingFlags = map[string]string{}

// goRuntimeEnv are variables read by the Go runtime rather than the daemon.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

// flagArg is one container argument: -name=value, or -name for a boolean.
type flagArg struct{ name, value string }

type args []flagArg

// parseArgs parses container arguments, which the kit spells -name=value so
// that each flag and its value stay together.
func parseArgs(t *testing.T, raw []string) args {
	t.Helper()
	var a args
	for _, s := range raw {
		if !strings.HasPrefix(s, "-") || strings.HasPrefix(s, "--") {
			t.Fatalf("argument %q: want -name=value", s)
		}
		name, value, _ := strings.Cut(s[1:], "=")
		a = append(a, flagArg{name, value})
	}
	return a
}

func (a args) value(name string) (string, bool) {
	for _, f := range a {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

func (a args) has(name string) bool { _, ok := a.value(name); return ok }

// mustPort is the port of the address flag name, which the kit always sets
// explicitly so that the manifest shows where the daemon listens.
func mustPort(t *testing.T, a args, name string) int32 {
	t.Helper()
	v, ok := a.value(name)
	if !ok {
		t.Fatalf("no -%s: the kit sets every listen address explicitly", name)
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		t.Fatalf("-%s=%s: %v", name, v, err)
	}
	p, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("-%s=%s: %v", name, v, err)
	}
	return int32(p)
}

// TestManifestFlags checks each container argument against the flags the
// real binary has, each variable against those it reads, and each container
// port against the addresses it listens on.
func TestManifestFlags(t *testing.T) {
	t.Parallel()
	u := help(t, buildBinaries(t).encryptiond)
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			d := only(t, "Deployments", renderKustomization(t, k.dir, k.components).deployments)
			c := container(t, d, "encryptiond")
			a := parseArgs(t, c.Args)
			for _, f := range a {
				if !u.flags[f.name] && pendingFlags[f.name] == "" {
					t.Errorf("argument -%s: encryptiond has no such flag (encryptiond -help)", f.name)
				}
			}
			for _, e := range c.Env {
				if !u.env[e.Name] && !goRuntimeEnv[e.Name] {
					t.Errorf("variable %s: neither encryptiond (encryptiond -help) nor the Go runtime reads it", e.Name)
				}
			}
			listens := map[int32]string{}
			for _, f := range a {
				if strings.HasSuffix(f.name, "-addr") {
					listens[mustPort(t, a, f.name)] = f.name
				}
			}
			for _, p := range c.Ports {
				if listens[p.ContainerPort] == "" {
					t.Errorf("container port %s (%d): no -*-addr flag listens there (%v)", p.Name, p.ContainerPort, listens)
				}
				delete(listens, p.ContainerPort)
			}
			for port, flag := range listens {
				t.Errorf("-%s listens on %d, which is not a container port", flag, port)
			}
		})
	}
}

// TestPendingFlags fails once the binary serves a pending flag, so that the
// list cannot outlive the product change.
func TestPendingFlags(t *testing.T) {
	t.Parallel()
	u := help(t, buildBinaries(t).encryptiond)
	for name, what := range pendingFlags {
		if u.flags[name] {
			t.Errorf("encryptiond now has -%s: remove it from pendingFlags", name)
		} else {
			t.Logf("pending product change: -%s, %s", name, what)
		}
	}
}

// TestKubeletRunsDeployment runs the rendered Deployment's container as a
// kubelet would: the image's binary with the manifest's arguments, its
// environment resolved from the rendered Secrets, its volumes written from
// the rendered ConfigMaps and Secrets (the TLS Secret as cert-manager would
// write it). Only the listen addresses become 127.0.0.1:0, and
// MONGODB_ATLAS_BASE_URL points at an Atlas emulator that accepts the
// credentials from the Secret. Then it probes the container as the kubelet
// would, calls the API as a client in the policy, and stops it with SIGTERM.
func TestKubeletRunsDeployment(t *testing.T) {
	t.Parallel()
	bins := buildBinaries(t)
	u := help(t, bins.encryptiond)
	for _, k := range kustomizations {
		if !k.complete {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			objs := renderKustomization(t, k.dir, k.components)
			d := only(t, "Deployments", objs.deployments)
			c := container(t, d, "encryptiond")
			pending := map[string]bool{}
			for _, f := range parseArgs(t, c.Args) {
				if !u.flags[f.name] && pendingFlags[f.name] != "" {
					t.Logf("runs without -%s, which encryptiond does not serve yet; the probes on its port are skipped", f.name)
					pending[f.name] = true
				}
			}
			runAsKubelet(t, bins, objs, d.Spec.Template.Spec, c, pending)
		})
	}
}

// runAsKubelet runs container c of pod spec as described for
// TestKubeletRunsDeployment, without the pending flags; probes on their
// ports are skipped.
func runAsKubelet(t *testing.T, bins binaries, objs *objects, spec corev1.PodSpec, c *corev1.Container, pending map[string]bool) {
	pki := newPKI(t)
	dir := t.TempDir()

	// Volumes: the files the kubelet would project.
	mounts := map[string]string{} // mountPath → local directory
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			t.Fatalf("volume mount %s: no such volume", m.Name)
		}
		v := spec.Volumes[i]
		local := filepath.Join(dir, "volumes", v.Name)
		files := map[string][]byte{}
		mode := os.FileMode(0o644)
		switch {
		case v.ConfigMap != nil:
			cm := findConfigMap(objs, v.ConfigMap.Name)
			if cm == nil {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for k, val := range cm.Data {
				files[k] = []byte(val)
			}
			if v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
		case v.Secret != nil:
			if s := findSecret(objs, v.Secret.SecretName); s != nil {
				files = s.Data
			} else if cert := certificateFor(objs, v.Secret.SecretName); cert != nil {
				files = pki.certManagerSecret(t, cert)
			} else {
				t.Fatalf("volume %s: no Secret %s, and no Certificate writes it", v.Name, v.Secret.SecretName)
			}
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
		default:
			t.Fatalf("volume %s: only ConfigMap and Secret volumes are emulated", v.Name)
		}
		if err := os.MkdirAll(local, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(local, name), b, mode); err != nil {
				t.Fatal(err)
			}
		}
		mounts[m.MountPath] = local
	}

	// Arguments: paths into the volumes, listen addresses on 127.0.0.1:0.
	a := parseArgs(t, c.Args)
	portFlag := map[int32]string{} // container port → address flag
	var argv []string
	for _, f := range a {
		v := f.value
		if strings.HasSuffix(f.name, "-addr") {
			portFlag[mustPort(t, a, f.name)] = f.name
			v = "127.0.0.1:0"
		}
		if pending[f.name] {
			continue
		}
		for mp, local := range mounts {
			if strings.HasPrefix(v, mp+"/") {
				v = local + strings.TrimPrefix(v, mp)
			}
		}
		argv = append(argv, "-"+f.name+"="+v)
	}

	// Environment: literals and Secret keys, then the emulator's address.
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			s := findSecret(objs, e.ValueFrom.SecretKeyRef.Name)
			if s == nil {
				t.Fatalf("%s: no Secret %s", e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
			env[e.Name] = string(s.Data[e.ValueFrom.SecretKeyRef.Key])
		default:
			t.Fatalf("%s: only literal values and secretKeyRef are emulated", e.Name)
		}
	}
	emulatorURL := startEmulator(t, bins.emulator, env["MONGODB_ATLAS_CLIENT_ID"], env["MONGODB_ATLAS_CLIENT_SECRET"])
	env["MONGODB_ATLAS_BASE_URL"] = emulatorURL

	p := startDaemon(t, bins.encryptiond, env, argv)
	addrOf := func(t *testing.T, port intstr.IntOrString) string {
		t.Helper()
		cp, ok := containerPort(c, port)
		if !ok {
			t.Fatalf("port %s is not a container port", port.String())
		}
		flag := portFlag[cp.ContainerPort]
		if pending[flag] {
			t.Skipf("container port %d is -%s's, a pending product change: %s", cp.ContainerPort, flag, pendingFlags[flag])
		}
		addr, _ := p.serving[strings.ReplaceAll(flag, "-", "_")].(string)
		if addr == "" {
			t.Fatalf("container port %d: the daemon's serving record has no address for -%s: %v", cp.ContainerPort, flag, p.serving)
		}
		return addr
	}

	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
	}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
		if pr.probe == nil {
			continue
		}
		t.Run(pr.name+" probe passes", func(t *testing.T) {
			h := pr.probe.ProbeHandler
			switch {
			case h.GRPC != nil:
				probeGRPC(t, addrOf(t, intstr.FromInt32(h.GRPC.Port)), h.GRPC)
			case h.HTTPGet != nil:
				probeHTTP(t, addrOf(t, h.HTTPGet.Port), h.HTTPGet)
			case h.TCPSocket != nil:
				conn, err := net.DialTimeout("tcp", addrOf(t, h.TCPSocket.Port), 5*time.Second)
				if err != nil {
					t.Fatalf("tcpSocket probe: %v", err)
				}
				conn.Close()
			default:
				t.Fatalf("%s probe %v: the image has no shell or tools for exec probes", pr.name, h)
			}
		})
	}

	if a.has("tls-cert") {
		t.Run("a plaintext gRPC probe on the TLS gRPC port fails", func(t *testing.T) {
			// Why the kit needs -health-addr or the TLS probe mode.
			conn, err := grpc.NewClient(addrOf(t, intstr.FromInt32(mustPort(t, a, "grpc-addr"))), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
				t.Errorf("plaintext Health/Check on the TLS port = %v, want an error", resp)
			}
		})
	}

	t.Run("a caller in the policy reads a project", func(t *testing.T) {
		identity, group := reader(t, objs)
		cert := pki.client(t, identity)
		serverName := certificateFor(objs, tlsSecretName(spec)).Spec.DNSNames[1]
		httpAddr := addrOf(t, intstr.FromInt32(mustPort(t, a, "http-addr")))
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pki.pool, Certificates: []tls.Certificate{cert}, ServerName: serverName,
		}}}
		defer client.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+httpAddr+"/v1/groups/"+group+"/encryptionAtRest", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET as %s, verifying the server as %s: %v", identity, serverName, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"awsKms"`)) {
			t.Errorf("GET as %s = %d %s, want 200 with the configuration", identity, resp.StatusCode, body)
		}
	})

	t.Run("SIGTERM stops it within the grace period", func(t *testing.T) {
		grace := 30 * time.Second
		if g := spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, p.stderr)
			}
		case <-time.After(grace):
			t.Errorf("still running %v after SIGTERM (terminationGracePeriodSeconds)", grace)
		}
	})
}

func findConfigMap(objs *objects, name string) *corev1.ConfigMap {
	for _, c := range objs.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// certificateFor returns the Certificate that writes Secret name, or nil.
func certificateFor(objs *objects, secret string) *certificate {
	for _, c := range objs.certificates {
		if c.Spec.SecretName == secret {
			return c
		}
	}
	return nil
}

// tlsSecretName is the Secret behind the pod's volume "tls".
func tlsSecretName(spec corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	return ""
}

// reader returns an identity that the rendered policy lets read, and a
// project it may read.
func reader(t *testing.T, objs *objects) (identity, group string) {
	t.Helper()
	for _, cm := range objs.configMaps {
		doc, ok := cm.Data["policy.yaml"]
		if !ok {
			continue
		}
		var policy struct {
			Callers []struct {
				Identity    string
				Read, Write []string
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &policy); err != nil {
			t.Fatalf("ConfigMap %s policy.yaml: %v", cm.Name, err)
		}
		for _, c := range policy.Callers {
			if c.Identity == "*" || len(c.Read) == 0 {
				continue
			}
			if c.Read[0] == "*" {
				return c.Identity, "5f4e3d2c1b0a998877665544"
			}
			return c.Identity, c.Read[0]
		}
	}
	t.Fatalf("no policy.yaml with a caller that may read")
	return "", ""
}

// probeGRPC checks as the kubelet does: grpc.health.v1.Health/Check with the
// probe's service, over plaintext, or for mode TLS over TLS without
// verifying the server and without a client certificate.
func probeGRPC(t *testing.T, addr string, g *corev1.GRPCAction) {
	t.Helper()
	creds := insecure.NewCredentials()
	if g.Mode != nil && *g.Mode == corev1.GRPCProbeModeTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithUserAgent("kube-probe/1.37"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("grpc probe of %s (mode %v): %v %v, want SERVING", addr, g.Mode, resp, err)
	}
}

// probeHTTP checks as the kubelet does: a GET without a client certificate,
// the server's certificate not verified; 200–399 passes.
func probeHTTP(t *testing.T, addr string, h *corev1.HTTPGetAction) {
	t.Helper()
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	u := url.URL{Scheme: scheme, Host: addr, Path: h.Path}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String(), nil)
	req.Header.Set("User-Agent", "kube-probe/1.37")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("httpGet probe %s: %v", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		t.Errorf("httpGet probe %s = %d %s, want 2xx or 3xx", u.String(), resp.StatusCode, body)
	}
}

// startEmulator runs the Atlas emulator on 127.0.0.1:0, accepting the
// service account clientID/secret, and returns its base URL.
func startEmulator(t *testing.T, bin, clientID, secret string) string {
	t.Helper()
	if clientID == "" || secret == "" {
		t.Fatalf("the container's environment has no Atlas service account")
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-client-id", clientID, "-client-secret", secret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
	first := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
			}
		}
		cmd.Wait()
	}()
	select {
	case line := <-first:
		base, ok := strings.CutPrefix(line, "atlas-emulator listening on ")
		if !ok {
			t.Fatalf("atlas-emulator printed %q", line)
		}
		return base
	case <-time.After(30 * time.Second):
		t.Fatalf("atlas-emulator did not start in 30 s")
		return ""
	}
}

// daemon is a running encryptiond.
type daemon struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan error
	serving map[string]any // the "serving" log record
}

// startDaemon runs encryptiond with exactly env and argv, as a container
// would, and waits for its "serving" log record.
func startDaemon(t *testing.T, bin string, env map[string]string, argv []string) *daemon {
	t.Helper()
	p := &daemon{cmd: exec.Command(bin, argv...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "serving" {
				p.serving = rec
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("encryptiond %s exited before serving: %v\n%s", strings.Join(argv, " "), err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("encryptiond not serving after 30 s:\n%s", p.stderr)
	return nil
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pki is a throwaway CA standing in for the cluster's issuer.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "deploy test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	return p
}

// issue signs a leaf certificate for tmpl and returns it and its key as PEM.
func (p *pki) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// certManagerSecret is what cert-manager writes for cert with a CA issuer:
// tls.crt, tls.key and the issuing CA as ca.crt.
func (p *pki) certManagerSecret(t *testing.T, cert *certificate) map[string][]byte {
	t.Helper()
	var ips []net.IP
	for _, s := range cert.Spec.IPAddresses {
		ips = append(ips, net.ParseIP(s))
	}
	crt, key := p.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cert.Spec.CommonName},
		DNSNames:    cert.Spec.DNSNames,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": p.pem}
}

// client issues a client certificate whose URI SAN is identity.
func (p *pki) client(t *testing.T, identity string) tls.Certificate {
	t.Helper()
	u, err := url.Parse(identity)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := p.issue(t, &x509.Certificate{URIs: []*url.URL{u}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
