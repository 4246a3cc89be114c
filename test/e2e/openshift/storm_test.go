package openshift

// The cancel storm: BuildRuns cancelled at random moments, in both of
// Tekton's cancel modes, with builds that are held New for a while so that
// many cancels land while the step's upload waits inside instantiatebinary
// (the simulator, like OpenShift's server, goes on with a build whose client
// has gone). Whatever the moment: no step panics, every BuildRun ends
// BuildRunCanceled, and no OpenShift build is New, Pending or Running 10 s
// after its cancel.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/ocbuild/ocbuild/test/sim"
)

const (
	stormRuns     = 20 // per Tekton cancel mode
	stormParallel = 5
	// stormLatest is the latest cancel moment after the BuildRun's
	// creation: past the clone, the upload, the start delay and into the
	// running build.
	stormLatest = 14 * time.Second
	// orphanAfter is how long after its cancel a build may still be active.
	orphanAfter = 10 * time.Second
)

func TestCancelStorm(t *testing.T) {
	for _, mode := range cancelModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := testContext(t, 20*time.Minute)
			useCancelMode(ctx, t, mode.keepPod)
			ns := newNamespace(t, true)
			seen := watchCancels(ctx, t, ns)

			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed>>1))
			type plan struct {
				build      string
				startDelay time.Duration
				cancelAt   time.Duration
			}
			plans := make([]plan, stormRuns)
			for i := range plans {
				p := plan{build: fmt.Sprintf("storm-%02d", i),
					startDelay: time.Duration(rng.Int64N(int64(6 * time.Second))),
					cancelAt:   time.Duration(rng.Int64N(int64(stormLatest)))}
				plans[i] = p
				createBuild(t, gitBuild(ns, p.build, "hello", dockerStrategy, arrayParam("build-env",
					sim.KnobStartDelay+"="+p.startDelay.Round(time.Millisecond).String(), sim.KnobDuration+"=30s")))
			}

			type result struct {
				br        *buildv1beta1.BuildRun
				cancelled time.Time
				err       error
				// builds of the run's BuildConfig, orphanAfter after the cancel.
				builds []buildv1.Build
			}
			results := make([]result, stormRuns)
			work := make(chan int)
			var wg sync.WaitGroup
			for range stormParallel {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						p := plans[i]
						br := createBuildRun(t, ns, p.build)
						// The stimulus: a cancel at a random moment.
						select {
						case <-time.After(p.cancelAt):
						case <-ctx.Done():
							results[i] = result{br: br, err: ctx.Err()}
							continue
						}
						patch := []byte(`{"spec":{"state":"` + buildv1beta1.BuildRunStateCancel + `"}}`)
						at := time.Now()
						if _, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Patch(ctx, br.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
							results[i] = result{br: br, err: err}
							continue
						}
						done, err := buildRunDone(ctx, ns, br.Name, 3*time.Minute)
						if err != nil {
							results[i] = result{br: done, cancelled: at, err: err}
							continue
						}
						select {
						case <-time.After(time.Until(at.Add(orphanAfter))):
						case <-ctx.Done():
						}
						list, err := builds.BuildV1().Builds(ns).List(ctx, metav1.ListOptions{LabelSelector: "buildconfig=" + p.build})
						if err != nil {
							results[i] = result{br: done, cancelled: at, err: err}
							continue
						}
						results[i] = result{br: done, cancelled: at, builds: list.Items}
					}
				}()
			}
			for i := range plans {
				work <- i
			}
			close(work)
			wg.Wait()

			var latencies []time.Duration
			phases := map[string]int{}
			panics, orphans, notCancelled := 0, 0, 0
			for i, r := range results {
				p := plans[i]
				if r.err != nil {
					t.Errorf("BuildRun of %s: %v", p.build, r.err)
					continue
				}
				status, reason, msg := condition(r.br)
				if status != corev1.ConditionFalse || reason != buildv1beta1.BuildRunStateCancel {
					notCancelled++
					t.Errorf("BuildRun %s (cancel at %s): %s/%s: %s, want False/%s", r.br.Name, p.cancelAt, status, reason, msg, buildv1beta1.BuildRunStateCancel)
				}
				log, exit := stormStep(ns, r.br)
				phases[stormPhase(log)]++
				if strings.Contains(log, "panic:") || strings.Contains(log, "goroutine ") || exit == "exit status 2" {
					panics++
					t.Errorf("step of BuildRun %s panicked (exit %q):\n%s", r.br.Name, exit, log)
				}
				if !mode.keepPod && exit == "exit status 1" && !strings.Contains(log, "ocbuild: failed: ") {
					t.Errorf("step of BuildRun %s exited 1 without naming a reason:\n%s", r.br.Name, log)
				}
				for _, b := range r.builds {
					switch b.Status.Phase {
					case buildv1.BuildPhaseNew, buildv1.BuildPhasePending, buildv1.BuildPhaseRunning, "":
						orphans++
						t.Errorf("OpenShift build %s is %s %s after BuildRun %s was cancelled (cancel at %s after creation); step log:\n%s",
							b.Name, b.Status.Phase, orphanAfter, r.br.Name, p.cancelAt, log)
					case buildv1.BuildPhaseComplete:
						// It won the race only if it completed before the cancel.
						if b.Status.CompletionTimestamp != nil && b.Status.CompletionTimestamp.Time.After(r.cancelled.Add(time.Second)) {
							orphans++
							t.Errorf("OpenShift build %s completed %s after BuildRun %s was cancelled: it ran on unnoticed",
								b.Name, b.Status.CompletionTimestamp.Sub(r.cancelled).Round(time.Second), r.br.Name)
						}
					case buildv1.BuildPhaseCancelled:
						if d, ok := seen.latency(r.br, b.Name); ok {
							latencies = append(latencies, d)
						}
					}
				}
			}
			slices.Sort(latencies)
			t.Logf("%d BuildRuns: %d panics, %d orphaned builds, %d not BuildRunCanceled; cancels landed %v; TaskRun cancel -> build Cancelled over %d builds: p50 %s, p95 %s",
				stormRuns, panics, orphans, notCancelled, phases, len(latencies), percentile(latencies, 50), percentile(latencies, 95))
		})
	}
}

// stormPhase names the phase a cancel reached the step in, from its log.
func stormPhase(log string) string {
	switch {
	case log == "":
		return "before-step"
	case strings.Contains(log, "ocbuild: uploading ") && !strings.Contains(log, "ocbuild: uploaded "):
		return "in-upload"
	case strings.Contains(log, " started from BuildConfig "):
		return "building"
	}
	return "before-upload"
}

// stormStep is the ocbuild step's log and exit ("" if it never ran).
func stormStep(ns string, br *buildv1beta1.BuildRun) (string, string) {
	if br.Status.TaskRunName == nil {
		return "", ""
	}
	log, _ := sb.Executor.StepLog(ns, *br.Status.TaskRunName, stepName)
	exit, _ := sb.Executor.StepExit(ns, *br.Status.TaskRunName, stepName)
	return log, exit
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return sorted[i-1].Round(time.Millisecond)
}

// cancels records when each TaskRun was first seen cancelled and each
// OpenShift build first seen Cancelled, from watches of the namespace.
type cancels struct {
	mu       sync.Mutex
	taskRuns map[string]time.Time
	builds   map[string]time.Time
}

// latency is from the BuildRun's TaskRun being cancelled to build Cancelled.
func (c *cancels) latency(br *buildv1beta1.BuildRun, build string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if br.Status.TaskRunName == nil {
		return 0, false
	}
	from, ok1 := c.taskRuns[*br.Status.TaskRunName]
	to, ok2 := c.builds[build]
	if !ok1 || !ok2 {
		return 0, false
	}
	return to.Sub(from), true
}

func watchCancels(ctx context.Context, t *testing.T, ns string) *cancels {
	t.Helper()
	c := &cancels{taskRuns: map[string]time.Time{}, builds: map[string]time.Time{}}
	record := func(m map[string]time.Time, name string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := m[name]; !ok {
			m[name] = time.Now()
		}
	}
	trs := sb.Tekton.TektonV1().TaskRuns(ns)
	trInformer := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return trs.List(ctx, o) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return trs.Watch(ctx, o)
		},
	}, &pipelinev1.TaskRun{}, 0, cache.Indexers{})
	onTaskRun := func(obj any) {
		if tr, ok := obj.(*pipelinev1.TaskRun); ok && tr.Spec.Status == pipelinev1.TaskRunSpecStatusCancelled {
			record(c.taskRuns, tr.Name)
		}
	}
	bs := builds.BuildV1().Builds(ns)
	bInformer := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return bs.List(ctx, o) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return bs.Watch(ctx, o)
		},
	}, &buildv1.Build{}, 0, cache.Indexers{})
	onBuild := func(obj any) {
		if b, ok := obj.(*buildv1.Build); ok && b.Status.Phase == buildv1.BuildPhaseCancelled {
			record(c.builds, b.Name)
		}
	}
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
	}{{trInformer, onTaskRun}, {bInformer, onBuild}} {
		fn := reg.fn
		if _, err := reg.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, o any) { fn(o) }}); err != nil {
			t.Fatal(err)
		}
		go reg.inf.RunWithContext(ctx)
		if !cache.WaitForCacheSync(ctx.Done(), reg.inf.HasSynced) {
			t.Fatal("the cancel watches did not sync")
		}
	}
	return c
}
