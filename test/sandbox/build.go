package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// KubernetesVersion is the version of k8s.io/kubernetes the sandbox builds
// kube-apiserver and kube-controller-manager from (see test/go.mod).
const KubernetesVersion = "v1.36.1"

// kubeLDFlags stamps k8s.io/component-base/version (and client-go's copy) the
// way hack/lib/version.sh does, so the API server reports v1.36.1 instead of
// v0.0.0-master+$Format:%H$ (which kubectl cannot parse). buildDate is fixed so
// that the link stays cached between runs.
func kubeLDFlags() string {
	var parts []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		for _, kv := range [][2]string{
			{"gitVersion", KubernetesVersion},
			{"gitMajor", "1"},
			{"gitMinor", "36"},
			{"gitTreeState", "clean"},
			{"buildDate", "1970-01-01T00:00:00Z"},
		} {
			parts = append(parts, fmt.Sprintf("-X %s.%s=%s", pkg, kv[0], kv[1]))
		}
	}
	return strings.Join(parts, " ")
}

// moduleDir returns the directory of the test module (the one holding this
// package), found from this source file's location, or from `go env GOMOD`.
func moduleDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the test module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot locate the ocbuild test module; run from within test/")
	}
	return filepath.Dir(gomod), nil
}

// goModDir returns the module cache directory of a dependency of the test module.
func goModDir(ctx context.Context, modDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v: %s", module, err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: module not downloaded", module)
	}
	return dir, nil
}

// binaries are the paths of everything the sandbox built.
type binaries struct {
	KubeAPIServer         string
	KubeControllerManager string
	Shipwright            string
	ShipwrightWebhook     string
	Git                   string
	Waiter                string
	Ocbuild               string
	// Kubelet serves node sandbox's kubelet API (test/tools/kubelet).
	Kubelet string
	// ToolsDir holds tools put on steps' PATH (git-lfs, which Shipwright's
	// git step requires, as its image ships it).
	ToolsDir string
	Extra    map[string]string // Go package → binary
}

// componentPackages are built from the test module in one `go build`, so that
// their links run in parallel and share one compile of the common packages.
var componentPackages = []string{
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"github.com/shipwright-io/build/cmd/git",
	"github.com/shipwright-io/build/cmd/waiter",
	"./cmd/sandbox-shipwright",
	"./cmd/sandbox-shipwright-webhook",
}

// buildBinaries builds (or, with a warm Go build cache, merely re-links or
// reuses) every binary the sandbox runs, under <test>/.cache/bin.
func buildBinaries(ctx context.Context, o *Options, modDir string) (*binaries, error) {
	binDir := filepath.Join(modDir, ".cache", "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	// Sandboxes starting at the same time (several test packages) must not
	// write the same binaries at once: one builds, the others wait and find
	// everything up to date.
	lock, err := os.OpenFile(filepath.Join(modDir, ".cache", "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking the build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	extraPkgs := make([]string, 0, len(o.BuildImages))
	seen := map[string]bool{}
	for _, pkg := range o.BuildImages {
		if !seen[pkg] {
			seen[pkg] = true
			extraPkgs = append(extraPkgs, pkg)
		}
	}
	sort.Strings(extraPkgs)

	start := time.Now()
	o.printf("building kube-apiserver, kube-controller-manager, the Shipwright controller, its conversion webhook, git and waiter steps, git-lfs, the kubelet, and the ocbuild step (the first run compiles Kubernetes: several minutes)…\n")
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.printf("  still building (%s)…\n", time.Since(start).Round(time.Second))
			}
		}
	}()
	defer close(done)

	toolsDir := filepath.Join(modDir, ".cache", "tools")
	errc := make(chan error, 4)
	go func() {
		errc <- runGo(ctx, filepath.Join(modDir, "tools", "git-lfs"), "build", "-o", filepath.Join(toolsDir, "git-lfs"), "github.com/git-lfs/git-lfs/v3")
	}()
	go func() {
		args := append([]string{"build", "-ldflags", kubeLDFlags(), "-o", binDir + string(filepath.Separator)}, componentPackages...)
		args = append(args, extraPkgs...)
		errc <- runGo(ctx, modDir, args...)
	}()
	go func() {
		// A module of its own: virtual-kubelet needs k8s.io v0.37.
		errc <- runGo(ctx, filepath.Join(modDir, "tools", "kubelet"), "build", "-o", filepath.Join(binDir, "sandbox-kubelet"), ".")
	}()
	go func() {
		ver := o.StepVersion
		errc <- runGo(ctx, filepath.Dir(modDir), "build", "-ldflags", "-X main.version="+ver, "-o", filepath.Join(binDir, "ocbuild"), "./step")
	}()
	var firstErr error
	for i := 0; i < 4; i++ {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	o.printf("binaries ready in %s (%s)\n", time.Since(start).Round(time.Second), binDir)

	b := &binaries{
		KubeAPIServer:         filepath.Join(binDir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(binDir, "kube-controller-manager"),
		Shipwright:            filepath.Join(binDir, "sandbox-shipwright"),
		ShipwrightWebhook:     filepath.Join(binDir, "sandbox-shipwright-webhook"),
		Git:                   filepath.Join(binDir, "git"),
		Waiter:                filepath.Join(binDir, "waiter"),
		Ocbuild:               filepath.Join(binDir, "ocbuild"),
		Kubelet:               filepath.Join(binDir, "sandbox-kubelet"),
		ToolsDir:              toolsDir,
		Extra:                 map[string]string{},
	}
	for _, pkg := range extraPkgs {
		b.Extra[pkg] = filepath.Join(binDir, filepath.Base(pkg))
	}
	return b, nil
}

func runGo(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return nil
}
