package deploy

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// These machines cannot pull base images or run Docker, so the image is
// checked through what it is made of: the Dockerfile's go build line must be
// `make build`'s, the binary it makes must be the one `make build` makes,
// byte for byte, and that binary must be static.

// goBuild is one `go build` command line.
type goBuild struct {
	env   map[string]string
	flags []string // -name or -name=value, sorted; without -o
	out   string
	pkgs  []string
}

// valueFlags are go build flags that may take their value as the next word.
var valueFlags = map[string]bool{
	"-o": true, "-ldflags": true, "-gcflags": true, "-asmflags": true, "-tags": true, "-mod": true,
	"-p": true, "-pgo": true, "-buildmode": true, "-installsuffix": true, "-modfile": true,
	"-overlay": true, "-toolexec": true, "-C": true,
}

// parseGoBuild parses words (a shell command, split) as
// [NAME=VALUE ...] go build [flags] packages.
func parseGoBuild(words []string) (goBuild, error) {
	b := goBuild{env: map[string]string{}}
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		k, v, _ := strings.Cut(words[i], "=")
		b.env[k] = v
	}
	if i+1 >= len(words) || filepath.Base(words[i]) != "go" || words[i+1] != "build" {
		return b, fmt.Errorf("%q is not [NAME=VALUE ...] go build ...", strings.Join(words, " "))
	}
	for i += 2; i < len(words); i++ {
		w := words[i]
		switch {
		case !strings.HasPrefix(w, "-"):
			b.pkgs = append(b.pkgs, w)
		case valueFlags[w]:
			if i+1 == len(words) {
				return b, fmt.Errorf("%s without a value", w)
			}
			i++
			if w == "-o" {
				b.out = words[i]
			} else {
				b.flags = append(b.flags, w+"="+words[i])
			}
		case strings.HasPrefix(w, "-o="):
			b.out = strings.TrimPrefix(w, "-o=")
		default:
			b.flags = append(b.flags, w)
		}
	}
	slices.Sort(b.flags)
	return b, nil
}

// shellWords splits a command line as sh does, for the quoting the Makefile
// and the Dockerfile use: blanks, single and double quotes, backslashes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// dockerfile is the Dockerfile's instructions, continuation lines joined,
// comments dropped: each is the instruction word and its rest.
type instruction struct{ cmd, rest string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return out
}

// dockerGoBuild is the Dockerfile's go build line, and its instructions.
func dockerGoBuild(t *testing.T) (goBuild, []instruction) {
	t.Helper()
	ins := readDockerfile(t)
	var found []goBuild
	for _, in := range ins {
		if in.cmd != "RUN" || !strings.Contains(in.rest, "go build") {
			continue
		}
		words, err := shellWords(in.rest)
		if err != nil {
			t.Fatal(err)
		}
		for len(words) > 0 && strings.HasPrefix(words[0], "--") { // --mount=…
			words = words[1:]
		}
		b, err := parseGoBuild(words)
		if err != nil {
			t.Fatalf("Dockerfile: %v", err)
		}
		found = append(found, b)
	}
	return only(t, "go build lines in the Dockerfile", found), ins
}

// makeGoBuild is what `make build BIN=bin` runs.
func makeGoBuild(t *testing.T, bin string) goBuild {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "make", "-s", "-n", "-C", root, "build", "GO=go", "BIN="+bin).Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	var found []goBuild
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		words, err := shellWords(line)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseGoBuild(words)
		if err != nil {
			t.Fatalf("make -n build: %v", err)
		}
		found = append(found, b)
	}
	return only(t, "commands in make -n build", found)
}

// TestDockerfileMatchesMakeBuild compares the two build lines and checks the
// image's shape: multi-stage, the Go release of go.mod, a distroless or
// scratch base, a non-root user, the binary as entrypoint.
func TestDockerfileMatchesMakeBuild(t *testing.T) {
	t.Parallel()
	docker, ins := dockerGoBuild(t)
	mk := makeGoBuild(t, "bin")

	dockerEnv := maps.Clone(docker.env)
	for _, k := range []string{"GOOS", "GOARCH"} { // the target platform's
		if v := dockerEnv[k]; v != "$TARGET"+strings.TrimPrefix(k, "GO") {
			t.Errorf("Dockerfile: %s=%s, want $TARGET%s (buildx's target platform)", k, v, strings.TrimPrefix(k, "GO"))
		}
		delete(dockerEnv, k)
	}
	if !maps.Equal(dockerEnv, mk.env) {
		t.Errorf("environment: Dockerfile %v, make build %v; want the same", dockerEnv, mk.env)
	}
	if mk.env["CGO_ENABLED"] != "0" {
		t.Errorf("make build: CGO_ENABLED=%q, want 0 (a static binary)", mk.env["CGO_ENABLED"])
	}
	if !slices.Equal(docker.flags, mk.flags) {
		t.Errorf("flags: Dockerfile %v, make build %v; want the same", docker.flags, mk.flags)
	}
	for _, f := range []string{"-trimpath"} {
		if !slices.Contains(mk.flags, f) {
			t.Errorf("make build flags %v lack %s", mk.flags, f)
		}
	}
	if !slices.Equal(docker.pkgs, []string{"./cmd/encryptiond"}) || !slices.Equal(mk.pkgs, []string{"./cmd/..."}) {
		t.Errorf("packages: Dockerfile %v, make build %v; want ./cmd/encryptiond among ./cmd/...", docker.pkgs, mk.pkgs)
	}

	var froms []string
	want := map[string]bool{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.rest)
		case "ARG":
			if v, ok := strings.CutPrefix(in.rest, "GO_VERSION="); ok {
				goMod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, "go.mod"))
				if goMod == nil || !strings.HasPrefix(v, string(goMod[1])+".") {
					t.Errorf("Dockerfile GO_VERSION=%s, want a %s release (go.mod)", v, goMod[1])
				}
				if rv := strings.TrimPrefix(runtime.Version(), "go"); v != rv {
					t.Logf("Dockerfile GO_VERSION=%s, these tests run %s: the same flags give the same bytes only with the same Go release", v, rv)
				}
				want["GO_VERSION"] = true
			}
		case "USER":
			want["USER"] = in.rest == "65532:65532" // the manifests' runAsUser
		case "ENTRYPOINT":
			want["ENTRYPOINT"] = in.rest == `["/encryptiond"]`
		case "COPY":
			if strings.HasPrefix(in.rest, "--from=") {
				want["COPY"] = strings.HasSuffix(in.rest, " "+docker.out+" /encryptiond")
			}
		}
	}
	for _, k := range []string{"GO_VERSION", "USER", "ENTRYPOINT", "COPY"} {
		if !want[k] {
			t.Errorf("Dockerfile: want ARG GO_VERSION (a Go release), USER 65532:65532, ENTRYPOINT [\"/encryptiond\"], COPY --from=… %s /encryptiond; %s is not so", docker.out, k)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile FROM %v: want a build stage and a runtime stage", froms)
	}
	if !strings.Contains(froms[0], "golang:${GO_VERSION}") {
		t.Errorf("build stage FROM %s, want golang:${GO_VERSION}", froms[0])
	}
	last := froms[len(froms)-1]
	if !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless static or scratch", last)
	}
}

// TestMakeBuildIsTheImageBinary runs both build lines here and compares the
// binaries; then checks that the binary is static and built as stated.
func TestMakeBuildIsTheImageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries twice; skipped with -short")
	}
	t.Parallel()
	tmp := t.TempDir()
	docker, _ := dockerGoBuild(t)

	// A build inside the image has no GOFLAGS; neither have these.
	env := append(os.Environ(), "GOFLAGS=")
	run := func(name string, cmd *exec.Cmd) {
		cmd.Env = append(cmd.Env, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	makeBin := filepath.Join(tmp, "make")
	run("make build", exec.CommandContext(t.Context(), "make", "-s", "-C", root, "build", "GO="+goBin(), "BIN="+makeBin))

	dockerOut := filepath.Join(tmp, "docker", "encryptiond")
	args := append([]string{"-C", root, "build"}, docker.flags...)
	args = append(append(args, "-o", dockerOut), docker.pkgs...)
	cmd := exec.CommandContext(t.Context(), goBin(), args...)
	for k, v := range docker.env {
		switch k {
		case "GOOS":
			v = runtime.GOOS
		case "GOARCH":
			v = runtime.GOARCH
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	run("the Dockerfile's go build", cmd)

	fromMake, err := os.ReadFile(filepath.Join(makeBin, "encryptiond"))
	if err != nil {
		t.Fatal(err)
	}
	fromDocker, err := os.ReadFile(dockerOut)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromMake, fromDocker) {
		t.Errorf("make build's encryptiond (%d bytes) differs from the Dockerfile line's (%d bytes)", len(fromMake), len(fromDocker))
	}

	path := filepath.Join(makeBin, "encryptiond")
	if runtime.GOOS == "linux" {
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("encryptiond has a %v program header: it is dynamically linked", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("encryptiond needs %v: it is not static", libs)
		}
		// -ldflags='-s -w', which Go does not record under -trimpath.
		for _, s := range f.Sections {
			if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") {
				t.Errorf("encryptiond has a %s section: want it stripped (-ldflags='-s -w')", s.Name)
			}
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("go version -m encryptiond: %s=%q, want %q", k, settings[k], v)
		}
	}
	for k := range settings {
		if strings.HasPrefix(k, "vcs") {
			t.Errorf("go version -m encryptiond: %s is stamped; the image build has no .git, so make build must not stamp it either", k)
		}
	}
}

// TestDockerignoreAdmitsTheBuild checks that the .dockerignore allowlist
// holds every directory of this module that the binary is built from.
func TestDockerignoreAdmitsTheBuild(t *testing.T) {
	t.Parallel()
	var allowed []string
	rules := strings.Split(strings.TrimSpace(string(readFile(t, ".dockerignore"))), "\n")
	var patterns []string
	for _, r := range rules {
		if r = strings.TrimSpace(r); r != "" && !strings.HasPrefix(r, "#") {
			patterns = append(patterns, r)
		}
	}
	if len(patterns) == 0 || patterns[0] != "*" {
		t.Fatalf(".dockerignore %v: want an allowlist, starting with *", patterns)
	}
	for _, p := range patterns[1:] {
		a, ok := strings.CutPrefix(p, "!")
		if !ok {
			t.Fatalf(".dockerignore: %q after *: want only !exceptions", p)
		}
		allowed = append(allowed, strings.TrimSuffix(a, "/"))
	}
	out, err := exec.CommandContext(t.Context(), goBin(), "-C", root, "list", "-deps", "-f", `{{with .Module}}{{if .Main}}{{$.Dir}}{{end}}{{end}}`, "./cmd/encryptiond").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/encryptiond: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, dir)
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, filepath.ToSlash(rel))
	}
	for _, n := range need {
		if !slices.ContainsFunc(allowed, func(a string) bool { return n == a || strings.HasPrefix(n, a+"/") }) {
			t.Errorf(".dockerignore leaves out %s, which go build ./cmd/encryptiond reads (allowed: %v)", n, allowed)
		}
	}
}
