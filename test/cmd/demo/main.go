// Command demo is `make demo`: it starts the sandbox with the OpenShift Build
// API simulator, installs strategies/ and the namespaced RBAC with
// kustomize's Go API (as `kubectl apply -k` would), creates the sample Build
// samples/go-hello-docker/build.yaml (openshift-docker) pointed at the
// sandbox's git server and registry, runs a BuildRun while streaming the
// ocbuild step's log, prints what the BuildRun reports — status.output.digest,
// status.output.size, status.source.git.commitSha — and checks the digest
// against the registry. Exit status 0 means the digest was verified.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

const (
	namespace = "ocbuild-demo"
	// sampleApp is the directory of samples/apps the sample Build builds;
	// the sandbox's git server serves samples/apps/<name> as <name>.git.
	sampleApp = "go-hello"
	stepName  = "openshift-build"
)

func main() {
	dir := flag.String("dir", "", "sandbox state directory (default: a new temporary directory, removed after a successful run)")
	keep := flag.Bool("keep", false, "keep the sandbox state directory (logs, TaskRun workspaces) after a successful run")
	timeout := flag.Duration("timeout", 10*time.Minute, "how long the BuildRun may take")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{keep: *keep, timeout: *timeout}
	code := d.run(ctx, *dir)
	os.Exit(code)
}

type demo struct {
	keep    bool
	timeout time.Duration
	root    string
	sb      *sandbox.Sandbox
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "demo: FAILED: "+format+"\n", args...)
	return 1
}

func (d *demo) run(ctx context.Context, dir string) int {
	var err error
	if d.root, err = kit.RepoRoot(); err != nil {
		return fail("%v", err)
	}
	tempDir := dir == ""
	if tempDir {
		if dir, err = os.MkdirTemp("", "ocbuild-demo-"); err != nil {
			return fail("%v", err)
		}
	}
	say("starting the sandbox: kube-apiserver, Shipwright, the TaskRun executor, registry, git server and the OpenShift Build API simulator")
	say("(the first run compiles Kubernetes and Shipwright from their Go modules: several minutes; later runs take seconds)")
	start := time.Now()
	simulator := sim.New(sim.Options{})
	d.sb, err = sandbox.Start(ctx, sandbox.Options{
		Dir:       dir,
		Repos:     filepath.Join(d.root, "samples", "apps"),
		FrontDoor: simulator.FrontDoor(),
		Out:       os.Stdout,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: sandbox state and logs in %s\n", dir)
		return fail("starting the sandbox: %v", err)
	}
	say("sandbox up in %s (state and logs in %s)", time.Since(start).Round(time.Second), dir)
	code := d.buildRun(ctx)
	say("stopping the sandbox")
	quietKlog() // client-go informers in the simulator log "context canceled" as they stop
	d.sb.Stop()
	switch {
	case code != 0 || d.keep || !tempDir:
		fmt.Printf("sandbox state and logs kept in %s\n", dir)
	default:
		_ = os.RemoveAll(dir)
	}
	return code
}

func (d *demo) buildRun(ctx context.Context) int {
	sb := d.sb
	say("installing strategies/ (kustomize): ClusterBuildStrategies openshift-docker, openshift-s2i, openshift-buildconfig")
	if err := kit.InstallStrategies(ctx, sb.AdminConfig, d.root); err != nil {
		return fail("installing strategies/: %v", err)
	}
	if err := sb.CreateNamespace(ctx, namespace); err != nil {
		return fail("creating namespace %s: %v", namespace, err)
	}
	say("installing strategies/rbac/namespace in %s: Role ocbuild-step bound to ServiceAccount pipeline", namespace)
	if err := kit.InstallNamespaceRBAC(ctx, sb.AdminConfig, d.root, namespace); err != nil {
		return fail("installing the namespaced RBAC: %v", err)
	}

	build, err := d.sampleBuild()
	if err != nil {
		return fail("%v", err)
	}
	say("creating Build %s/%s from samples/go-hello-docker/build.yaml: %s at %s, strategy %s, output %s",
		namespace, build.Name, build.Spec.Source.Git.URL, ptr.Deref(build.Spec.Source.Git.Revision, "HEAD"), build.Spec.Strategy.Name, build.Spec.Output.Image)
	shp := sb.Shipwright.ShipwrightV1beta1()
	if _, err := shp.Builds(namespace).Create(ctx, build, metav1.CreateOptions{}); err != nil {
		return fail("creating the Build: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		b, err := shp.Builds(namespace).Get(ctx, build.Name, metav1.GetOptions{})
		if err != nil || b.Status.Registered == nil {
			return false, nil
		}
		if *b.Status.Registered != corev1.ConditionTrue {
			return false, fmt.Errorf("the Build is not registered: %s: %s", ptr.Deref(b.Status.Reason, ""), ptr.Deref(b.Status.Message, ""))
		}
		return true, nil
	})
	if err != nil {
		return fail("%v", err)
	}

	br, err := d.sampleBuildRun(build.Name)
	if err != nil {
		return fail("%v", err)
	}
	if br, err = shp.BuildRuns(namespace).Create(ctx, br, metav1.CreateOptions{}); err != nil {
		return fail("creating the BuildRun: %v", err)
	}
	say("BuildRun %s/%s created; streaming the ocbuild step's log (kubectl logs -c step-%s)", namespace, br.Name, stepName)

	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	done, err := d.follow(rctx, br.Name)
	if err != nil {
		return fail("%v (sandbox logs: %s)", err, filepath.Join(sb.Dir, "logs"))
	}
	return d.report(ctx, done)
}

// sampleBuild reads samples/go-hello-docker/build.yaml and points it at the
// sandbox: the app's repository on the git server (the sandbox serves
// samples/apps/go-hello as go-hello.git, so no contextDir) and the sandbox
// registry (plain http: output.insecure).
func (d *demo) sampleBuild() (*buildv1beta1.Build, error) {
	path := filepath.Join(d.root, "samples", "go-hello-docker", "build.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b buildv1beta1.Build
	if err := yaml.UnmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b.Spec.Source == nil || b.Spec.Source.Git == nil {
		return nil, fmt.Errorf("%s: no Git source", path)
	}
	b.Namespace = namespace
	b.Spec.Source.Git.URL = d.sb.GitRepoURL(sampleApp)
	b.Spec.Source.Git.Revision = ptr.To("main")
	b.Spec.Source.ContextDir = nil
	b.Spec.Output.Image = fmt.Sprintf("%s/%s/%s:latest", d.sb.Registry, namespace, sampleApp)
	b.Spec.Output.Insecure = ptr.To(true)
	return &b, nil
}

// sampleBuildRun reads samples/go-hello-docker/buildrun.yaml.
func (d *demo) sampleBuildRun(build string) (*buildv1beta1.BuildRun, error) {
	path := filepath.Join(d.root, "samples", "go-hello-docker", "buildrun.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var br buildv1beta1.BuildRun
	if err := yaml.UnmarshalStrict(data, &br); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	br.Namespace = namespace
	br.Spec.Build.Name = ptr.To(build)
	return &br, nil
}

// follow copies the step log to stdout while the BuildRun runs and returns
// the finished BuildRun.
func (d *demo) follow(ctx context.Context, name string) (*buildv1beta1.BuildRun, error) {
	shp := d.sb.Shipwright.ShipwrightV1beta1().BuildRuns(namespace)
	var (
		taskRun string
		f       *os.File
		br      *buildv1beta1.BuildRun
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	copyNew := func() {
		if f == nil && taskRun != "" {
			f, _ = os.Open(filepath.Join(d.sb.Executor.TaskRunDir(namespace, taskRun), "logs", stepName+".log"))
		}
		if f != nil {
			_, _ = io.Copy(os.Stdout, f)
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cur, err := shp.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			br = cur
			if taskRun == "" && cur.Status.TaskRunName != nil {
				taskRun = *cur.Status.TaskRunName
			}
		}
		copyNew()
		if br != nil && br.Status.CompletionTime != nil {
			if c := br.Status.GetCondition(buildv1beta1.Succeeded); c != nil && c.Status != corev1.ConditionUnknown {
				// The step has exited: whatever it wrote is in the file.
				copyNew()
				return br, nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("BuildRun %s did not finish within %s", name, d.timeout)
			}
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func (d *demo) report(ctx context.Context, br *buildv1beta1.BuildRun) int {
	c := br.Status.GetCondition(buildv1beta1.Succeeded)
	fmt.Println()
	if c.Status != corev1.ConditionTrue {
		msg := fmt.Sprintf("BuildRun %s/%s: %s: %s", namespace, br.Name, c.Reason, c.Message)
		if fd := br.Status.FailureDetails; fd != nil {
			msg += fmt.Sprintf("\n  failureDetails.reason:  %s\n  failureDetails.message: %s", fd.Reason, fd.Message)
		}
		return fail("%s", msg)
	}
	if br.Status.Output == nil || br.Status.Output.Digest == "" {
		return fail("BuildRun %s succeeded but reports no status.output.digest", br.Name)
	}
	commit := ""
	if br.Status.Source != nil && br.Status.Source.Git != nil {
		commit = br.Status.Source.Git.CommitSha
	}
	say("BuildRun %s/%s succeeded", namespace, br.Name)
	fmt.Printf("  status.output.digest          %s\n", br.Status.Output.Digest)
	fmt.Printf("  status.output.size            %d bytes\n", br.Status.Output.Size)
	fmt.Printf("  status.source.git.commitSha   %s\n", commit)
	if br.Status.BuildSpec == nil {
		return fail("BuildRun %s has no status.buildSpec", br.Name)
	}
	ref := br.Status.BuildSpec.Output.Image
	img, err := kit.Inspect(ctx, ref)
	if err != nil {
		return fail("reading %s from the registry: %v", ref, err)
	}
	if img.Digest != br.Status.Output.Digest {
		return fail("the registry has %s@%s, but the BuildRun reports %s", ref, img.Digest, br.Status.Output.Digest)
	}
	if img.Size != br.Status.Output.Size {
		return fail("the registry's manifest adds up to %d bytes, but the BuildRun reports %d", img.Size, br.Status.Output.Size)
	}
	if head := d.sb.RepoHeads[sampleApp]; commit != head {
		return fail("the BuildRun reports commit %q, but %s.git's HEAD is %s", commit, sampleApp, head)
	}
	layers := fmt.Sprintf("%d layers", img.Layers)
	if img.Layers == 1 {
		layers = "1 layer"
	}
	fmt.Printf("verified: registry has %s@%s (%d bytes: config + %s); commit %s is %s.git's HEAD\n",
		ref, img.Digest, img.Size, layers, commit, sampleApp)

	// The image is what buildah built: run it. The sandbox has no container
	// runtime; the entrypoint is a static binary, run chrooted into the
	// image's unpacked root filesystem as the image's user.
	say("running the built image: %q as user %s, chrooted into its unpacked root filesystem, then GET /", img.Config.Config.Entrypoint, img.Config.Config.User)
	body, printed, err := kit.Serve(ctx, kit.ByDigest(ref, img.Digest), "/")
	if err != nil {
		return fail("running %s: %v", ref, err)
	}
	for _, l := range strings.Split(strings.TrimSpace(printed), "\n") {
		fmt.Printf("  %s| %s\n", sampleApp, l)
	}
	fmt.Printf("  GET / -> %s\n", strings.TrimSpace(body))
	return 0
}

// quietKlog discards client-go's klog output from now on.
func quietKlog() {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
}
