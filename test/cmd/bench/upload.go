package main

// The upload figures: ocbuild against a baseline that uploads the way
// `oc start-build --from-dir --follow --wait` does (cmd/bench-baseline) and
// against the physical limit of reading the tree (a plain tar to
// /dev/null), all three run as child processes measured the same way.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// The BuildConfigs of the upload runs: ocbuild creates and updates its own;
// the baseline's is made once by the bench, as a user would with
// `oc new-build --binary --strategy=docker`.
const (
	ocbuildBC  = "upload"
	baselineBC = "upload-baseline"
)

// Targets of issue 9.
const (
	targetSpeedup  = 2.0      // ocbuild ÷ baseline upload throughput, at least
	targetRSS      = 64 << 20 // ocbuild's peak RSS on the big tree, at most
	targetOverhead = 0.5      // ocbuild ÷ baseline small-tree overhead, at most
	targetRequests = 6.0      // build.openshift.io requests per build, at most
)

// procRun is one child process: the limit, the baseline or ocbuild.
type procRun struct {
	wall    time.Duration // process start → exit, measured here
	upload  time.Duration // instantiatebinary: request start → answer (as the tool reports it)
	sent    int64         // compressed bytes sent (-1: unknown)
	maxRSS  int64         // rusage maxrss, bytes
	cpu     time.Duration // user + system time of the process
	hostCPU time.Duration // user + system time of the bench process (simulator, front door) meanwhile
	build   string        // the OpenShift build it ran
	running time.Duration // that build seen Running → seen Complete

	// The overhead's two halves, on the bench's clock: process start →
	// build seen New, → seen Running, and seen Complete → process exit.
	started, ended   time.Time
	toNew, toRunning time.Duration
	afterComplete    time.Duration
	// From the front door: process start → the tool's first request, and
	// its instantiatebinary request → build seen Running (the server's
	// part, which no client can shorten).
	toFirstRequest, serverStart time.Duration
}

// overhead is what the tool costs on top of the build's own duration.
func (r procRun) overhead() time.Duration { return r.wall - r.running }

func (r procRun) createdAfter() time.Duration      { return r.toNew }
func (r procRun) runningAfter() time.Duration      { return r.toRunning }
func (r procRun) exitAfter() time.Duration         { return r.afterComplete }
func (r procRun) firstRequestAfter() time.Duration { return r.toFirstRequest }
func (r procRun) serverPart() time.Duration        { return r.serverStart }
func (r procRun) clientPart() time.Duration        { return r.overhead() - r.serverStart }

// split tells where the overhead went: process start → build created,
// → build Running, and build Complete → process exit.
func (r procRun) split() string {
	return fmt.Sprintf("start→first request %s, →New %s, →Running %s (server %s), Complete→exit %s",
		ms(r.toFirstRequest), ms(r.toNew), ms(r.toRunning), ms(r.serverStart), ms(r.afterComplete))
}

// uploadFigures is everything the upload half of the bench measured.
type uploadFigures struct {
	bytes       int64
	files       int
	smallBytes  int64
	smallFiles  int
	limit       []procRun
	baseline    []procRun // on the big tree
	ocbuild     []procRun
	smallBase   []procRun // on the small tree
	smallOC     []procRun
	smallRealOC []procRun // -oc: the real oc on the small tree
}

type tools struct {
	ocbuild, baseline string
	measure           string
	kubeconfig        string
	results           string
	work              string
}

func (b *bench) upload(ctx context.Context) (*uploadFigures, error) {
	work, err := os.MkdirTemp("", "ocbuild-bench-upload-")
	if err != nil {
		return nil, err
	}
	if !b.o.hold {
		defer os.RemoveAll(work)
	}
	t := &tools{work: work, ocbuild: filepath.Join(work, "ocbuild"), baseline: filepath.Join(work, "bench-baseline"),
		measure: filepath.Join(work, "bench-measure")}
	fmt.Printf("\nbuilding the ocbuild binary (%s), the baseline (test/cmd/bench-baseline) and bench-measure…\n", filepath.Join(b.root, "step"))
	for _, g := range []struct{ dir, pkg, out string }{
		{b.root, "./step", t.ocbuild},
		{filepath.Join(b.root, "test"), "./cmd/bench-baseline", t.baseline},
		{filepath.Join(b.root, "test"), "./cmd/bench-measure", t.measure},
	} {
		gb := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", g.out, g.pkg)
		gb.Dir, gb.Stdout, gb.Stderr = g.dir, os.Stdout, os.Stderr
		gb.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := gb.Run(); err != nil {
			return nil, fmt.Errorf("go build %s: %w", g.pkg, err)
		}
	}

	big, small := filepath.Join(work, "tree"), filepath.Join(work, "small")
	fmt.Printf("generating %s of incompressible data in %d files under %s, and %d files under %s…\n",
		human(b.o.treeSize), b.o.treeFiles, big, b.o.smallFiles, small)
	t0 := time.Now()
	if err := generateTree(big, b.o.treeSize, b.o.treeFiles); err != nil {
		return nil, err
	}
	if err := generateTree(small, b.o.smallSize, b.o.smallFiles); err != nil {
		return nil, err
	}
	fmt.Printf("  generated in %s\n", time.Since(t0).Round(100*time.Millisecond))

	if t.kubeconfig, err = b.stepKubeconfig(ctx, filepath.Join(work, "kubeconfig")); err != nil {
		return nil, err
	}
	t.results = filepath.Join(work, "results")
	if err := os.MkdirAll(t.results, 0o755); err != nil {
		return nil, err
	}
	if err := b.baselineBuildConfig(ctx); err != nil {
		return nil, err
	}
	if b.o.hold {
		fmt.Printf("  tools, kubeconfig (namespace %s, service account pipeline) and trees in %s\n", namespace, work)
	}

	f := &uploadFigures{bytes: b.o.treeSize, files: b.o.treeFiles, smallBytes: b.o.smallSize, smallFiles: b.o.smallFiles}
	fmt.Printf("physical limit: %s as a plain tar to /dev/null…\n", big)
	for i := 0; i < b.o.uploadRuns; i++ {
		r, err := b.runLimit(ctx, t, big)
		if err != nil {
			return nil, err
		}
		fmt.Printf("  %s in %s (%.1f MiB/s), peak RSS %s\n", human(f.bytes), ms(r.wall), mibps(f.bytes, r.wall), human(r.maxRSS))
		f.limit = append(f.limit, r)
	}
	for i := 0; i < b.o.uploadRuns; i++ {
		fmt.Printf("baseline (archive/tar + compress/gzip, default level, one stream) on %s, then --follow --wait…\n", human(f.bytes))
		r, err := b.runBaseline(ctx, t, big)
		if err != nil {
			return nil, err
		}
		b.reportUpload(f.bytes, r)
		f.baseline = append(f.baseline, r)
		fmt.Printf("ocbuild build --source-dir on %s…\n", human(f.bytes))
		if r, err = b.runOCBuild(ctx, t, big, true); err != nil {
			return nil, err
		}
		b.reportUpload(f.bytes, r)
		f.ocbuild = append(f.ocbuild, r)
	}
	fmt.Printf("small tree (%d files, %s): %d runs each, alternating…\n", f.smallFiles, human(f.smallBytes), b.o.smallRuns)
	for i := 0; i < b.o.smallRuns; i++ {
		r, err := b.runBaseline(ctx, t, small)
		if err != nil {
			return nil, err
		}
		f.smallBase = append(f.smallBase, r)
		o, err := b.runOCBuild(ctx, t, small, false)
		if err != nil {
			return nil, err
		}
		f.smallOC = append(f.smallOC, o)
		fmt.Printf("  run %d: baseline wall %s − build %s = %s (%s); ocbuild wall %s − build %s = %s (%s)\n", i+1,
			ms(r.wall), ms(r.running), ms(r.overhead()), r.split(), ms(o.wall), ms(o.running), ms(o.overhead()), o.split())
		if b.o.oc != "" {
			c, err := b.runRealOC(ctx, t, small)
			if err != nil {
				return nil, err
			}
			f.smallRealOC = append(f.smallRealOC, c)
			fmt.Printf("  run %d: oc wall %s − build %s = %s (%s)\n", i+1, ms(c.wall), ms(c.running), ms(c.overhead()), c.split())
		}
	}
	return f, nil
}

func (b *bench) reportUpload(size int64, r procRun) {
	fmt.Printf("  upload %s (%.1f MiB/s, %s sent), wall %s, build %s Running → Complete %s, peak RSS %s, CPU %s (sandbox %s)\n",
		ms(r.upload), mibps(size, r.upload), human(r.sent), ms(r.wall), r.build, ms(r.running), human(r.maxRSS), ms(r.cpu), ms(r.hostCPU))
}

// baselineBuildConfig creates the baseline's BuildConfig: binary source,
// the Docker strategy, the same kind of output as ocbuild's.
func (b *bench) baselineBuildConfig(ctx context.Context) error {
	bc := &buildv1.BuildConfig{
		ObjectMeta: metav1.ObjectMeta{Name: baselineBC, Namespace: namespace},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy: buildv1.BuildRunPolicySerial,
			CommonSpec: buildv1.CommonSpec{
				Source:   buildv1.BuildSource{Type: buildv1.BuildSourceBinary, Binary: &buildv1.BinaryBuildSource{}},
				Strategy: buildv1.BuildStrategy{Type: buildv1.DockerBuildStrategyType, DockerStrategy: &buildv1.DockerBuildStrategy{}},
				Output: buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage",
					Name: fmt.Sprintf("%s/%s/%s:latest", b.sb.Registry, namespace, baselineBC)}},
			},
		},
	}
	_, err := b.builds.BuildV1().BuildConfigs(namespace).Create(ctx, bc, metav1.CreateOptions{})
	return err
}

// child runs cmd under bench-measure (see there why not directly) and
// reads its wall time and rusage; it also takes the bench process's own CPU
// meanwhile (the simulator receiving the upload).
func (t *tools) child(cmd *exec.Cmd) (procRun, error) {
	out := filepath.Join(t.work, "measure")
	_ = os.Remove(out)
	cmd.Args = append([]string{t.measure, "-out", out, "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = t.measure
	var self0, self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	started := time.Now()
	err := cmd.Run()
	ended := time.Now()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	if err != nil {
		return procRun{}, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return procRun{}, err
	}
	var wall, maxrss, utime, stime, code int64
	if _, err := fmt.Sscanf(string(data), "wall=%d maxrss=%d utime=%d stime=%d exit=%d", &wall, &maxrss, &utime, &stime, &code); err != nil {
		return procRun{}, fmt.Errorf("bench-measure wrote %q: %w", data, err)
	}
	return procRun{
		wall:    time.Duration(wall),
		maxRSS:  maxrss * 1024,
		cpu:     time.Duration(utime + stime),
		hostCPU: cpuTime(&self1) - cpuTime(&self0),
		sent:    -1,
		started: started,
		ended:   ended,
	}, nil
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runClient runs one of the tools that talk to the build API (the
// baseline, ocbuild, oc) as a child with a clean environment, its front
// door arrivals recorded from an empty start.
func (b *bench) runClient(t *tools, cmd *exec.Cmd) (procRun, error) {
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.work, "TMPDIR=" + t.work}
	b.sim.ResetStats()
	return t.child(cmd)
}

func (b *bench) runLimit(ctx context.Context, t *tools, tree string) (procRun, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return procRun{}, err
	}
	defer devnull.Close()
	cmd := exec.CommandContext(ctx, t.baseline, "-tar-only", tree)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = devnull, &stderr
	r, err := t.child(cmd)
	if err != nil {
		return r, fmt.Errorf("bench-baseline -tar-only: %v: %s", err, stderr.String())
	}
	r.upload = r.wall
	return r, nil
}

var baselineLine = regexp.MustCompile(`bench-baseline: uploaded \d+ files, \d+ bytes \((\d+) sent\) in (\S+); build (\S+) (\S+)`)

func (b *bench) runBaseline(ctx context.Context, t *tools, tree string) (procRun, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, t.baseline, "--kubeconfig="+t.kubeconfig, "--namespace="+namespace,
		"--buildconfig="+baselineBC, "--from-dir="+tree)
	cmd.Stdout = io.Discard // the build log
	cmd.Stderr = &stderr
	r, err := b.runClient(t, cmd)
	if err != nil {
		return r, fmt.Errorf("bench-baseline: %v: %s", err, stderr.String())
	}
	m := baselineLine.FindStringSubmatch(stderr.String())
	if m == nil {
		return r, fmt.Errorf("bench-baseline printed no \"uploaded …\" line: %s", stderr.String())
	}
	r.sent, _ = strconv.ParseInt(m[1], 10, 64)
	if r.upload, err = time.ParseDuration(m[2]); err != nil {
		return r, err
	}
	r.build = m[3]
	return r, b.buildTimes(ctx, &r, "bench-baseline")
}

var ocStartedLine = regexp.MustCompile(`build\.build\.openshift\.io/(\S+) started`)

// runRealOC runs `oc start-build <baseline BC> --from-dir --follow --wait`
// with the oc binary given by -oc (the bench does not build oc).
func (b *bench) runRealOC(ctx context.Context, t *tools, tree string) (procRun, error) {
	var out strings.Builder
	cmd := exec.CommandContext(ctx, b.o.oc, "start-build", baselineBC, "--from-dir="+tree, "--follow", "--wait",
		"--kubeconfig="+t.kubeconfig, "--namespace="+namespace)
	cmd.Stdout, cmd.Stderr = &out, &out
	r, err := b.runClient(t, cmd)
	if err != nil {
		return r, fmt.Errorf("oc start-build: %v: %s", err, out.String())
	}
	m := ocStartedLine.FindStringSubmatch(out.String())
	if m == nil {
		return r, fmt.Errorf("oc start-build printed no \"build.build.openshift.io/… started\" line:\n%s", out.String())
	}
	r.build = m[1]
	return r, b.buildTimes(ctx, &r, "oc/")
}

var uploadedLine = regexp.MustCompile(`ocbuild: uploaded (\d+) files, ([^ ]+ [^ ]+) \(([^ ]+) ([^ ]+) compressed\) in (\S+)`)
var startedLine = regexp.MustCompile(`ocbuild: build [^/\s]+/(\S+) started`)

func (b *bench) runOCBuild(ctx context.Context, t *tools, tree string, echo bool) (procRun, error) {
	to := fmt.Sprintf("%s/%s/%s:latest", b.sb.Registry, namespace, ocbuildBC)
	args := []string{"build",
		"--kubeconfig=" + t.kubeconfig, "--namespace=" + namespace,
		"--buildconfig=" + ocbuildBC, "--strategy=docker", "--source-dir=" + tree,
		"--to=" + to, "--insecure-registry",
		"--result-file-image-digest=" + filepath.Join(t.results, "digest"),
		"--result-file-image-size=" + filepath.Join(t.results, "size"),
		"--result-file-error-reason=" + filepath.Join(t.results, "reason"),
		"--result-file-error-message=" + filepath.Join(t.results, "message"),
	}
	var log strings.Builder
	cmd := exec.CommandContext(ctx, t.ocbuild, args...)
	cmd.Stdout = io.Discard // the build log
	cmd.Stderr = &log
	if echo {
		cmd.Stderr = io.MultiWriter(&log, prefixWriter{os.Stdout, "  | "})
	}
	r, err := b.runClient(t, cmd)
	if err != nil {
		msg, _ := os.ReadFile(filepath.Join(t.results, "message"))
		return r, fmt.Errorf("ocbuild build: %v: %s\n%s", err, msg, log.String())
	}
	m := uploadedLine.FindStringSubmatch(log.String())
	if m == nil {
		return r, fmt.Errorf("ocbuild printed no \"uploaded …\" line:\n%s", log.String())
	}
	r.sent = parseBytes(m[3], m[4])
	if r.upload, err = time.ParseDuration(m[5]); err != nil {
		return r, err
	}
	s := startedLine.FindStringSubmatch(log.String())
	if s == nil {
		return r, fmt.Errorf("ocbuild printed no \"build … started\" line:\n%s", log.String())
	}
	r.build = s[1]
	return r, b.buildTimes(ctx, &r, "ocbuild")
}

// buildTimes fills r.running and the overhead's split from the bench's
// watch (which may see the Complete a moment after the tool did) and the
// front door's arrivals of the requests whose user agent starts with
// userAgent.
func (b *bench) buildTimes(ctx context.Context, r *procRun, userAgent string) error {
	var created, running, complete time.Time
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		var ok0, ok1, ok2 bool
		created, ok0 = b.phaseSeen.at(r.build, buildv1.BuildPhaseNew)
		running, ok1 = b.phaseSeen.at(r.build, buildv1.BuildPhaseRunning)
		complete, ok2 = b.phaseSeen.at(r.build, buildv1.BuildPhaseComplete)
		return ok0 && ok1 && ok2, nil
	})
	if err != nil {
		return fmt.Errorf("the watch did not see build %s New, Running and Complete", r.build)
	}
	r.running = complete.Sub(running)
	r.toNew, r.toRunning = created.Sub(r.started), running.Sub(r.started)
	r.afterComplete = r.ended.Sub(complete)
	var first, instantiate time.Time
	for _, a := range b.sim.Arrivals() {
		if !strings.HasPrefix(a.UserAgent, userAgent) || a.At.Before(r.started) || a.At.After(r.ended) {
			continue
		}
		if first.IsZero() {
			first = a.At
		}
		if instantiate.IsZero() && strings.HasSuffix(a.Key, "/instantiatebinary") {
			instantiate = a.At
		}
	}
	if first.IsZero() || instantiate.IsZero() {
		return fmt.Errorf("the front door saw no instantiatebinary request from %s (user agent %s…)", r.build, userAgent)
	}
	r.toFirstRequest, r.serverStart = first.Sub(r.started), running.Sub(instantiate)
	return nil
}

// parseBytes reads upload.Bytes's "12.3 MiB".
func parseBytes(num, unit string) int64 {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return -1
	}
	mult := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]
	return int64(v * mult)
}

func mibps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}

// printUpload prints the upload table.
func printUpload(w io.Writer, f *uploadFigures) {
	fmt.Fprintf(w, "\nupload figures (%s of incompressible data in %d files; small tree %d files, %s; medians)\n",
		human(f.bytes), f.files, f.smallFiles, human(f.smallBytes))
	fmt.Fprintf(w, "  limit    = the tree read into a plain tar to /dev/null (no compression, no network)\n")
	fmt.Fprintf(w, "  baseline = what oc start-build --from-dir --follow --wait does: archive/tar + compress/gzip (default level), one stream\n\n")
	tw := newTable(w)
	fmt.Fprintln(tw, "metric\tlimit\tbaseline\tocbuild\ttarget\t\t")
	fmt.Fprintln(tw, "------\t-----\t--------\t-------\t------\t\t")
	med := func(rs []procRun, f func(procRun) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, f(r))
		}
		m, _, _ := stats3(ds)
		return m
	}
	upload := func(r procRun) time.Duration { return r.upload }
	lim, base, oc := med(f.limit, upload), med(f.baseline, upload), med(f.ocbuild, upload)
	fmt.Fprintf(tw, "upload throughput (MiB/s)\t%.1f\t%.1f\t%.1f\t\t\t\n", mibps(f.bytes, lim), mibps(f.bytes, base), mibps(f.bytes, oc))
	speedup := base.Seconds() / oc.Seconds()
	fmt.Fprintf(tw, "  ocbuild ÷ baseline\t\t\t%.2f×\t≥ %.0f×\t%s\t\n", speedup, targetSpeedup, passFail(speedup >= targetSpeedup))
	fmt.Fprintf(tw, "  ocbuild ÷ limit\t\t\t%.2f×\t\t\t\n", lim.Seconds()/oc.Seconds())
	fmt.Fprintf(tw, "upload time (request → answer)\t%s\t%s\t%s\t\t\t\n", ms(lim), ms(base), ms(oc))
	sent := func(rs []procRun) string {
		if len(rs) == 0 || rs[0].sent < 0 {
			return "-"
		}
		return human(rs[0].sent)
	}
	fmt.Fprintf(tw, "sent (gzip'd tar)\t-\t%s\t%s\t\t\t\n", sent(f.baseline), sent(f.ocbuild))
	wall := func(r procRun) time.Duration { return r.wall }
	fmt.Fprintf(tw, "process wall time\t%s\t%s\t%s\t\t\t\n", ms(med(f.limit, wall)), ms(med(f.baseline, wall)), ms(med(f.ocbuild, wall)))
	cpu := func(r procRun) time.Duration { return r.cpu }
	perGiB := func(d time.Duration) string {
		return fmt.Sprintf("%s (%.1f s/GiB)", ms(d), d.Seconds()/(float64(f.bytes)/(1<<30)))
	}
	fmt.Fprintf(tw, "process CPU (user+sys)\t%s\t%s\t%s\t\t\t\n", perGiB(med(f.limit, cpu)), perGiB(med(f.baseline, cpu)), perGiB(med(f.ocbuild, cpu)))
	host := func(r procRun) time.Duration { return r.hostCPU }
	fmt.Fprintf(tw, "receiver CPU (bench process: simulator)\t\t%s\t%s\t\t\t\n", perGiB(med(f.baseline, host)), perGiB(med(f.ocbuild, host)))
	rss := func(rs []procRun) int64 {
		var m int64
		for _, r := range rs {
			m = max(m, r.maxRSS)
		}
		return m
	}
	ocRSS := rss(f.ocbuild)
	fmt.Fprintf(tw, "peak RSS (rusage maxrss, max)\t%s\t%s\t%s\t≤ %s\t%s\t\n", human(rss(f.limit)), human(rss(f.baseline)), human(ocRSS),
		human(targetRSS), passFail(ocRSS <= targetRSS))
	ovh := func(rs []procRun) (time.Duration, string) {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.overhead())
		}
		m, lo, hi := stats3(ds)
		return m, fmt.Sprintf("%s [%s … %s]", ms(m), ms(lo), ms(hi))
	}
	bo, bs := ovh(f.smallBase)
	oo, osum := ovh(f.smallOC)
	fmt.Fprintf(tw, "small tree: overhead (wall − build Running → Complete)\t\t%s\t%s\t\t\t\n", bs, osum)
	fmt.Fprintf(tw, "  process start → first API request\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.firstRequestAfter)), ms(med(f.smallOC, procRun.firstRequestAfter)))
	fmt.Fprintf(tw, "  process start → build created (New)\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.createdAfter)), ms(med(f.smallOC, procRun.createdAfter)))
	fmt.Fprintf(tw, "  process start → build Running\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.runningAfter)), ms(med(f.smallOC, procRun.runningAfter)))
	fmt.Fprintf(tw, "  build Complete → process exit\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.exitAfter)), ms(med(f.smallOC, procRun.exitAfter)))
	fmt.Fprintf(tw, "  server: instantiatebinary arrives → build Running\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.serverPart)), ms(med(f.smallOC, procRun.serverPart)))
	fmt.Fprintf(tw, "  client: overhead − the server's part\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, procRun.clientPart)), ms(med(f.smallOC, procRun.clientPart)))
	fmt.Fprintf(tw, "  wall time\t\t%s\t%s\t\t\t\n", ms(med(f.smallBase, wall)), ms(med(f.smallOC, wall)))
	ratio := oo.Seconds() / bo.Seconds()
	fmt.Fprintf(tw, "  ocbuild ÷ baseline\t\t\t%.2f×\t≤ %.1f×\t%s\t\n", ratio, targetOverhead, passFail(bo > 0 && ratio <= targetOverhead))
	// No client can take less than the server's part: a client that cost
	// nothing at all would still reach only this ratio.
	fmt.Fprintf(tw, "  lowest ratio any client can reach (server's part ÷ baseline)\t\t\t%.2f×\t\t\t\n", med(f.smallOC, procRun.serverPart).Seconds()/bo.Seconds())
	fmt.Fprintf(tw, "  client part: ocbuild ÷ baseline\t\t\t%.2f×\t\t\t\n", med(f.smallOC, procRun.clientPart).Seconds()/med(f.smallBase, procRun.clientPart).Seconds())
	if len(f.smallRealOC) > 0 {
		co, csum := ovh(f.smallRealOC)
		fmt.Fprintf(tw, "small tree, the real oc (-oc): overhead\t\t\t%s\t\t\t\n", csum)
		fmt.Fprintf(tw, "  process start → first API request\t\t\t%s\t\t\t\n", ms(med(f.smallRealOC, procRun.firstRequestAfter)))
		fmt.Fprintf(tw, "  server: instantiatebinary arrives → build Running\t\t\t%s\t\t\t\n", ms(med(f.smallRealOC, procRun.serverPart)))
		fmt.Fprintf(tw, "  build Complete → process exit\t\t\t%s\t\t\t\n", ms(med(f.smallRealOC, procRun.exitAfter)))
		fmt.Fprintf(tw, "  ocbuild ÷ oc (overhead)\t\t\t%.2f×\t\t\t\n", oo.Seconds()/co.Seconds())
	}
	tw.Flush()
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// requestGroup is "VERB resource[/subresource]" within an API group:
// LIST for a GET of a collection, WATCH for a watch.
type requestGroup struct {
	group string // "build.openshift.io", "core", …
	label string
}

// groupKey turns a front-door stats key ("GET /apis/build.openshift.io/v1/
// namespaces/{ns}/builds/{name}/log") into its group and label
// ("GET builds/log").
func groupKey(key string) requestGroup {
	verb, p, _ := strings.Cut(key, " ")
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var group string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		group, segs = "core", segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		group, segs = segs[1], segs[3:]
	default:
		return requestGroup{group: "other", label: key}
	}
	if len(segs) > 0 && segs[0] == "watch" {
		segs = segs[1:]
	}
	if len(segs) >= 2 && segs[0] == "namespaces" && segs[1] == "{ns}" {
		segs = segs[2:]
	}
	if len(segs) == 0 {
		return requestGroup{group: group, label: verb + " (discovery)"}
	}
	var parts []string
	named := false
	for _, s := range segs {
		if s == "{name}" {
			named = true
			continue
		}
		parts = append(parts, s)
	}
	if verb == "GET" && !named {
		verb = "LIST"
	}
	return requestGroup{group: group, label: verb + " " + strings.Join(parts, "/")}
}

// printRequests prints the front door's counts per build, grouped by API
// group, then verb and resource.
func printRequests(w io.Writer, stats map[string]int64, builds int64) {
	fmt.Fprintf(w, "\nAPI requests per build by verb and resource (front door, %d BuildRuns):\n", builds)
	if builds == 0 {
		return
	}
	byGroup := map[string]map[string]int64{}
	for k, v := range stats {
		g := groupKey(k)
		if byGroup[g.group] == nil {
			byGroup[g.group] = map[string]int64{}
		}
		byGroup[g.group][g.label] += v
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	// build.openshift.io first, the others by name.
	slices.SortFunc(groups, func(a, b string) int {
		if (a == "build.openshift.io") != (b == "build.openshift.io") {
			if a == "build.openshift.io" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	per := func(n int64) float64 { return float64(n) / float64(builds) }
	var all int64
	tw := newTable(w)
	for _, g := range groups {
		labels := make([]string, 0, len(byGroup[g]))
		var total int64
		for l, n := range byGroup[g] {
			labels = append(labels, l)
			total += n
		}
		all += total
		slices.SortFunc(labels, func(a, b string) int {
			if d := byGroup[g][b] - byGroup[g][a]; d != 0 {
				return int(d)
			}
			return strings.Compare(a, b)
		})
		if g == "build.openshift.io" {
			fmt.Fprintf(tw, "  %s\t%.1f\ttarget ≤ %.0f\t%s\t\n", g, per(total), targetRequests, passFail(per(total) <= targetRequests))
		} else {
			fmt.Fprintf(tw, "  %s\t%.1f\t\t\t\n", g, per(total))
		}
		for _, l := range labels {
			fmt.Fprintf(tw, "    %s\t%.1f\t\t\t\n", l, per(byGroup[g][l]))
		}
	}
	fmt.Fprintf(tw, "  all groups\t%.1f\t\t\t\n", per(all))
	tw.Flush()
}

// stepKubeconfig writes a kubeconfig for the namespace's pipeline service
// account (bound to the shipped Role) pointing at the front door, as the
// executor gives steps.
func (b *bench) stepKubeconfig(ctx context.Context, path string) (string, error) {
	tok, err := b.sb.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, "pipeline", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	server, ca := b.sb.FrontDoor.URL, b.sb.FrontDoor.CAData
	if ca == nil {
		ca = b.sb.CAData
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["pipeline"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["sandbox"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: "pipeline", Namespace: namespace}
	cfg.CurrentContext = "sandbox"
	return path, clientcmd.WriteToFile(*cfg, path)
}

// generateTree writes files files totalling size bytes under dir: a
// Dockerfile that copies only itself (so the build stays cheap and the
// figures are the upload's) and incompressible data files, 100 per
// directory.
func generateTree(dir string, size int64, files int) error {
	rng := rand.NewChaCha8([32]byte{'o', 'c', 'b', 'u', 'i', 'l', 'd'})
	df := []byte("FROM scratch\nCOPY Dockerfile /Dockerfile\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	left := size - int64(len(df))
	buf := make([]byte, 1<<20)
	files-- // the Dockerfile is one of them
	for i := 0; i < files; i++ {
		n := left / int64(files-i)
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		f, err := os.Create(filepath.Join(sub, fmt.Sprintf("f%05d.bin", i)))
		if err != nil {
			return err
		}
		for w := int64(0); w < n; {
			chunk := buf[:min(int64(len(buf)), n-w)]
			_, _ = rng.Read(chunk)
			k, err := f.Write(chunk)
			if err != nil {
				f.Close()
				return err
			}
			w += int64(k)
		}
		if err := f.Close(); err != nil {
			return err
		}
		left -= n
	}
	return nil
}
