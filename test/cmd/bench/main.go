// Command bench is the sandbox half of `make bench`: it starts the sandbox
// with the OpenShift Build API simulator, installs strategies/ and the
// namespaced RBAC, and prints a table of what the ocbuild step costs on top
// of the OpenShift build it drives:
//
//   - step overhead: the step's wall time minus the OpenShift build's own
//     duration (Running → Complete), median over -runs BuildRuns of a build
//     the simulator holds in Running for -sim-duration;
//   - build complete → step exit: from the moment a watch sees the build
//     Complete to the step process's exit;
//   - API requests per build, counted at the front door (every request the
//     step makes goes through it), grouped by API group, verb and resource
//     (LIST is a GET of a collection), with the target of at most 6
//     build.openshift.io requests per build;
//   - the upload figures (upload.go), each tool a child process measured by
//     cmd/bench-measure (wall time, rusage maxrss and CPU): on a generated
//     tree of incompressible data (-tree-size bytes in -tree-files files),
//     the throughput of the physical limit (the tree as a plain tar to
//     /dev/null), of the baseline (cmd/bench-baseline: what `oc start-build
//     --from-dir --follow --wait` does, archive/tar + compress/gzip at the
//     default level in one stream) and of ocbuild (`ocbuild build
//     --source-dir`, with the token of a service account bound to the
//     shipped Role), upload throughput being tree bytes ÷ (instantiatebinary
//     request → answer); peak RSS; and on a small tree (-small-files) the
//     overhead of each, wall time minus its build's Running → Complete,
//     median of -small-runs, split at the front door's arrival of each
//     tool's first request and of its instantiatebinary: the server's part
//     (instantiatebinary arrives → build seen Running: build creation and
//     the pod's start) is printed beside the client's part (the rest), and
//     with it the lowest ratio any client could reach. Targets: ocbuild ≥ 2×
//     the baseline's throughput, ≤ 64 MiB peak RSS, ≤ 0.5× the baseline's
//     small-tree overhead; ratios are against the baseline measured in the
//     same run. With -oc PATH (an oc binary you have; the bench does not
//     build it) the real `oc start-build --from-dir --follow --wait` runs
//     on the small tree too, and ocbuild's overhead is also given against
//     it.
//
// Times come from the sandbox's records: the step's start (the StartedAt the
// executor writes in the step's termination message, millisecond precision)
// and exit (the mtime of the executor's exit record), and a watch on the
// builds (OpenShift's own status timestamps have one-second resolution).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildinformers "github.com/openshift/client-go/build/informers/externalversions"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

const (
	namespace = "ocbuild-bench"
	stepName  = "openshift-build"
	repo      = "hello"
)

type options struct {
	runs        int
	simDuration time.Duration
	treeSize    int64
	treeFiles   int
	smallSize   int64
	smallFiles  int
	smallRuns   int
	uploadRuns  int
	oc          string
	dir         string
	keep        bool
	hold        bool
	pprof       string
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 10, "BuildRuns for the overhead figures")
	flag.DurationVar(&o.simDuration, "sim-duration", 2*time.Second, "how long the simulator keeps each build Running (OCBUILD_SIM_DURATION)")
	flag.Int64Var(&o.treeSize, "tree-size", 1<<30, "bytes in the generated upload tree (0 skips the upload figures)")
	flag.IntVar(&o.treeFiles, "tree-files", 20000, "files in the generated upload tree")
	flag.Int64Var(&o.smallSize, "small-size", 40<<10, "bytes in the small tree (the overhead of a small upload)")
	flag.IntVar(&o.smallFiles, "small-files", 10, "files in the small tree")
	flag.IntVar(&o.smallRuns, "small-runs", 5, "runs of the baseline and of ocbuild on the small tree")
	flag.IntVar(&o.uploadRuns, "upload-runs", 1, "runs of the limit, the baseline and ocbuild on the big tree")
	flag.StringVar(&o.oc, "oc", "", "an oc binary: also run `oc start-build --from-dir --follow --wait` on the small tree and compare ocbuild's overhead with it")
	flag.BoolVar(&o.hold, "hold", false, "after the figures, keep the sandbox, the tools and the trees until interrupted (for profiling)")
	flag.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof for the bench process (the simulator) on this address, e.g. 127.0.0.1:6060")
	flag.StringVar(&o.dir, "dir", "", "sandbox state directory (default: a new temporary directory, removed afterwards)")
	flag.BoolVar(&o.keep, "keep", false, "keep the sandbox state directory")
	flag.Parse()

	if o.pprof != "" {
		go func() { fmt.Fprintln(os.Stderr, "bench: pprof:", http.ListenAndServe(o.pprof, nil)) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	o         options
	root      string
	sb        *sandbox.Sandbox
	sim       *sim.Sim
	builds    buildclient.Interface
	phaseSeen *phaseLog
	// firstRunRequests are the front door's counts for the first overhead
	// run (nil with one run).
	firstRunRequests map[string]int64
}

func run(ctx context.Context, o options) error {
	root, err := kit.RepoRoot()
	if err != nil {
		return err
	}
	dir, tempDir := o.dir, o.dir == ""
	if tempDir {
		if dir, err = os.MkdirTemp("", "ocbuild-bench-"); err != nil {
			return err
		}
	}
	fmt.Println("starting the sandbox with the OpenShift Build API simulator…")
	s := sim.New(sim.Options{})
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir, FrontDoor: s.FrontDoor(), Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox state and logs in %s\n", dir)
		return fmt.Errorf("starting the sandbox: %w", err)
	}
	b := &bench{o: o, root: root, sb: sb, sim: s, phaseSeen: newPhaseLog()}
	err = b.run(ctx)
	quietKlog() // client-go informers in the simulator log "context canceled" as they stop
	sb.Stop()
	if err != nil || o.keep || !tempDir {
		fmt.Printf("sandbox state and logs in %s\n", dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	return err
}

func (b *bench) run(ctx context.Context) error {
	sb := b.sb
	var err error
	if b.builds, err = buildclient.NewForConfig(sb.AdminConfig); err != nil {
		return err
	}
	if err := kit.InstallStrategies(ctx, sb.AdminConfig, b.root); err != nil {
		return err
	}
	if err := sb.CreateNamespace(ctx, namespace); err != nil {
		return err
	}
	if err := kit.InstallNamespaceRBAC(ctx, sb.AdminConfig, b.root, namespace); err != nil {
		return err
	}
	// Watch the builds: the moment each one is seen Running and Complete.
	factory := buildinformers.NewSharedInformerFactoryWithOptions(b.builds, 0, buildinformers.WithNamespace(namespace))
	inf := factory.Build().V1().Builds().Informer()
	record := func(obj any) {
		if x, ok := obj.(*buildv1.Build); ok {
			b.phaseSeen.saw(x.Name, x.Status.Phase)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, obj any) { record(obj) },
	}); err != nil {
		return err
	}
	stopCh := make(chan struct{})
	defer close(stopCh)
	factory.Start(stopCh)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("build informer did not sync")
	}

	runs, stats, err := b.overhead(ctx)
	if err != nil {
		return err
	}
	var up *uploadFigures
	if b.o.treeSize > 0 {
		if up, err = b.upload(ctx); err != nil {
			return err
		}
	}
	b.print(runs, stats)
	if up != nil {
		printUpload(os.Stdout, up)
	}
	if b.o.hold {
		fmt.Printf("\n-hold: the sandbox runs on (front door %s); Ctrl-C stops it\n", b.sb.FrontDoor.URL)
		<-ctx.Done()
	}
	return nil
}

// phaseLog records when a watch first saw each build in each phase.
type phaseLog struct {
	mu   sync.Mutex
	seen map[string]map[buildv1.BuildPhase]time.Time
}

func newPhaseLog() *phaseLog {
	return &phaseLog{seen: map[string]map[buildv1.BuildPhase]time.Time{}}
}

func (p *phaseLog) saw(build string, phase buildv1.BuildPhase) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.seen[build]
	if m == nil {
		m = map[buildv1.BuildPhase]time.Time{}
		p.seen[build] = m
	}
	if _, ok := m[phase]; !ok {
		m[phase] = now
	}
}

func (p *phaseLog) at(build string, phase buildv1.BuildPhase) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[build][phase]
	return t, ok
}

// runResult is one BuildRun's timings.
type runResult struct {
	stepWall      time.Duration // step process start → exit
	buildDuration time.Duration // build seen Running → seen Complete
	statusDur     time.Duration // the build's status.duration (whole seconds)
	completeToEnd time.Duration // build seen Complete → step exit
}

func (r runResult) overhead() time.Duration { return r.stepWall - r.buildDuration }

// overhead runs o.runs BuildRuns one after the other (the BuildConfig's
// Serial policy would queue them anyway) and returns their timings and the
// front door's request counts for them.
func (b *bench) overhead(ctx context.Context) ([]runResult, map[string]int64, error) {
	shp := b.sb.Shipwright.ShipwrightV1beta1()
	build := &buildv1beta1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: "overhead", Namespace: namespace},
		Spec: buildv1beta1.BuildSpec{
			Source:   &buildv1beta1.Source{Type: buildv1beta1.GitType, Git: &buildv1beta1.Git{URL: b.sb.GitRepoURL(repo)}},
			Strategy: buildv1beta1.Strategy{Name: "openshift-docker", Kind: ptr.To(buildv1beta1.ClusterBuildStrategyKind)},
			ParamValues: []buildv1beta1.ParamValue{{Name: "build-env", Values: []buildv1beta1.SingleValue{
				{Value: ptr.To(sim.KnobDuration + "=" + b.o.simDuration.String())}}}},
			Output:  buildv1beta1.Image{Image: fmt.Sprintf("%s/%s/overhead:latest", b.sb.Registry, namespace), Insecure: ptr.To(true)},
			Timeout: &metav1.Duration{Duration: 5 * time.Minute},
		},
	}
	if _, err := shp.Builds(namespace).Create(ctx, build, metav1.CreateOptions{}); err != nil {
		return nil, nil, err
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		cur, err := shp.Builds(namespace).Get(ctx, build.Name, metav1.GetOptions{})
		return err == nil && cur.Status.Registered != nil && *cur.Status.Registered == corev1.ConditionTrue, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("Build %s not registered: %w", build.Name, err)
	}

	fmt.Printf("\nrunning %d BuildRuns with %s=%s, one after the other…\n", b.o.runs, sim.KnobDuration, b.o.simDuration)
	b.sim.ResetStats()
	var out []runResult
	for i := 0; i < b.o.runs; i++ {
		r, err := b.oneRun(ctx, build.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("  run %2d: step %s, build %s (status.duration %s), overhead %s, complete→exit %s\n", i+1,
			ms(r.stepWall), ms(r.buildDuration), r.statusDur, ms(r.overhead()), ms(r.completeToEnd))
		out = append(out, r)
		if i == 0 && b.o.runs > 1 {
			// The first run creates the BuildConfig; the target is for the
			// runs that find it unchanged, counted apart.
			b.firstRunRequests = b.sim.Stats()
			b.sim.ResetStats()
		}
	}
	return out, b.sim.Stats(), nil
}

func (b *bench) oneRun(ctx context.Context, build string) (runResult, error) {
	shp := b.sb.Shipwright.ShipwrightV1beta1().BuildRuns(namespace)
	br, err := shp.Create(ctx, &buildv1beta1.BuildRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: build + "-", Namespace: namespace},
		Spec:       buildv1beta1.BuildRunSpec{Build: buildv1beta1.ReferencedBuild{Name: ptr.To(build)}},
	}, metav1.CreateOptions{})
	if err != nil {
		return runResult{}, err
	}
	var done *buildv1beta1.BuildRun
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		cur, err := shp.Get(ctx, br.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		done = cur
		c := cur.Status.GetCondition(buildv1beta1.Succeeded)
		return c != nil && c.Status != corev1.ConditionUnknown && cur.Status.CompletionTime != nil, nil
	})
	if err != nil {
		return runResult{}, fmt.Errorf("BuildRun %s did not finish: %w", br.Name, err)
	}
	if c := done.Status.GetCondition(buildv1beta1.Succeeded); c.Status != corev1.ConditionTrue {
		return runResult{}, fmt.Errorf("BuildRun %s failed: %s: %s", br.Name, c.Reason, c.Message)
	}
	tr := ptr.Deref(done.Status.TaskRunName, "")
	started, exited, err := b.stepTimes(ctx, tr)
	if err != nil {
		return runResult{}, err
	}
	list, err := b.builds.BuildV1().Builds(namespace).List(ctx, metav1.ListOptions{LabelSelector: "buildrun.shipwright.io/name=" + br.Name})
	if err != nil {
		return runResult{}, err
	}
	if len(list.Items) != 1 {
		return runResult{}, fmt.Errorf("BuildRun %s has %d OpenShift builds, want 1", br.Name, len(list.Items))
	}
	ob := list.Items[0]
	running, ok1 := b.phaseSeen.at(ob.Name, buildv1.BuildPhaseRunning)
	complete, ok2 := b.phaseSeen.at(ob.Name, buildv1.BuildPhaseComplete)
	if !ok1 || !ok2 {
		return runResult{}, fmt.Errorf("the watch did not see build %s Running and Complete", ob.Name)
	}
	return runResult{
		stepWall:      exited.Sub(started),
		buildDuration: complete.Sub(running),
		statusDur:     ob.Status.Duration,
		completeToEnd: exited.Sub(complete),
	}, nil
}

// stepTimes reads when the ocbuild step's process started (the executor's
// termination message, as Tekton's entrypoint writes it) and exited (the
// executor's exit record).
func (b *bench) stepTimes(ctx context.Context, taskRun string) (started, exited time.Time, err error) {
	dir := filepath.Join(b.sb.Executor.TaskRunDir(namespace, taskRun), "steps", stepName)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		fi, err := os.Stat(filepath.Join(dir, "exit"))
		if err != nil {
			return false, nil
		}
		data, err := os.ReadFile(filepath.Join(dir, "termination"))
		if err != nil {
			return false, nil
		}
		var results []struct{ Key, Value string }
		if json.Unmarshal(data, &results) != nil {
			return false, nil
		}
		for _, r := range results {
			if r.Key == "StartedAt" {
				t, err := time.Parse("2006-01-02T15:04:05.000Z07:00", r.Value)
				if err != nil {
					return false, fmt.Errorf("StartedAt %q: %w", r.Value, err)
				}
				started, exited = t, fi.ModTime()
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		err = fmt.Errorf("reading the step's start and exit in %s: %w", dir, err)
	}
	return started, exited, err
}

func (b *bench) print(runs []runResult, stats map[string]int64) {
	pick := func(f func(runResult) time.Duration) []time.Duration {
		var out []time.Duration
		for _, r := range runs {
			out = append(out, f(r))
		}
		return out
	}
	n := int64(len(runs))
	fmt.Printf("\nocbuild step on the sandbox (%d BuildRuns, %s=%s; times: median [min … max])\n\n", n, sim.KnobDuration, b.o.simDuration)
	tw := newTable(os.Stdout)
	fmt.Fprintln(tw, "metric\tvalue\t")
	fmt.Fprintln(tw, "------\t-----\t")
	row := func(name string, ds []time.Duration) {
		med, lo, hi := stats3(ds)
		fmt.Fprintf(tw, "%s\t%s  [%s … %s]\t\n", name, ms(med), ms(lo), ms(hi))
	}
	row("step overhead beyond the build's duration", pick(runResult.overhead))
	row("  step wall time (process start → exit)", pick(func(r runResult) time.Duration { return r.stepWall }))
	row("  build duration (watched Running → Complete)", pick(func(r runResult) time.Duration { return r.buildDuration }))
	row("build complete → step exit", pick(func(r runResult) time.Duration { return r.completeToEnd }))
	tw.Flush()
	if b.firstRunRequests != nil {
		var first int64
		for k, v := range b.firstRunRequests {
			if groupKey(k).group == "build.openshift.io" {
				first += v
			}
		}
		fmt.Printf("\nfirst BuildRun (creates the BuildConfig, takes and releases the start lock): %d build.openshift.io requests\n", first)
		// The other runs find it unchanged: the target is theirs.
		printRequests(os.Stdout, stats, n-1)
		return
	}
	printRequests(os.Stdout, stats, n)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			fmt.Fprint(p.w, p.prefix+l)
		}
	}
	return len(b), nil
}

func stats3(ds []time.Duration) (med, lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		med = s[len(s)/2]
	} else {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}

func ms(d time.Duration) string {
	if d >= 10*time.Second || d <= -10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// quietKlog discards client-go's klog output from now on.
func quietKlog() {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
}
