package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildlisters "github.com/openshift/client-go/build/listers/build/v1"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// ControllerOptions configure the build controller and its executors.
type ControllerOptions struct {
	// Config is an admin rest.Config for kube-apiserver.
	Config *rest.Config
	// Logs receives the build logs; Sources hands over binary uploads.
	Logs    Logs
	Sources Sources
	// Registry is the sandbox registry's host:port (plain http).
	Registry string
	// InsecureRegistries are further plain-http registries (host:port) the
	// builds may push to and pull from, e.g. the sandbox's registry that
	// requires credentials.
	InsecureRegistries []string
	// GitURL is the sandbox git server (<GitURL>/<repo>.git).
	GitURL string
	// Images is an admin image.openshift.io client: image stream references
	// resolve through it and pushes to the integrated registry are recorded
	// in image streams. NewController makes one from Config when nil; with
	// none (newController's tests) no image stream exists.
	Images imageclient.Interface
	// WorkDir holds the builds' working directories.
	WorkDir string
	// BuildDefaults is the cluster's build defaults environment: a build
	// gets each variable its strategy env does not set.
	BuildDefaults []corev1.EnvVar
	// Out receives the controller's own diagnostics (nil: discarded).
	Out io.Writer
}

// DefaultCompletionDeadline is OCM's default completionDeadlineSeconds.
const DefaultCompletionDeadline = 604800 * time.Second

// Causes with which a running build's executor is stopped.
var (
	errCancelled = errors.New("build cancelled")
	errDeadline  = errors.New("build exceeded its completionDeadlineSeconds")
	errDeleted   = errors.New("build deleted")
	errStopping  = errors.New("controller stopping")
	errTerminal  = errors.New("build reached a terminal phase")
)

// Controller plays openshift-controller-manager's build controller: runPolicy
// scheduling, phases, cancellation, deadlines and history pruning; it starts
// an executor (the build pod) for every build it moves to Pending.
type Controller struct {
	o       ControllerOptions
	client  buildclient.Interface
	kube    kubernetes.Interface
	streams *imageStreams // nil: no image streams
	initErr error

	informer cache.SharedIndexInformer
	lister   buildlisters.BuildLister
	queue    workqueue.TypedRateLimitingInterface[Key]

	runCtx   context.Context
	policyMu sync.Mutex // serialises the start decisions
	mu       sync.Mutex
	runs     map[Key]*runState
	wg       sync.WaitGroup
	now      func() time.Time
	// secretRecheck is how often a build waiting for its push secret is
	// looked at again.
	secretRecheck time.Duration
	// snippetDelay is how long after the builder reported Failed the
	// controller adds logSnippet (the pod terminating, §5.4).
	snippetDelay time.Duration
}

// runState is a running executor.
type runState struct {
	uid            types.UID
	cancel         context.CancelCauseFunc
	done           chan struct{}
	completesFirst bool
}

// NewController returns a controller; Run starts it.
func NewController(o ControllerOptions) *Controller {
	client, err := buildclient.NewForConfig(o.Config)
	if err != nil {
		return &Controller{initErr: err}
	}
	kube, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return &Controller{initErr: err}
	}
	if o.Images == nil {
		if o.Images, err = imageclient.NewForConfig(o.Config); err != nil {
			return &Controller{initErr: err}
		}
	}
	return newController(o, client, kube)
}

func newController(o ControllerOptions, client buildclient.Interface, kube kubernetes.Interface) *Controller {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logs == nil {
		o.Logs = NewLogs()
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(osTempDir(), "ocbuild-sim")
	}
	if o.Sources == nil {
		o.Sources = NewSources(filepath.Join(o.WorkDir, "uploads"))
	}
	c := &Controller{
		o: o, client: client, kube: kube, streams: newImageStreams(o.Images, o.Registry),
		runs:          map[Key]*runState{},
		now:           time.Now,
		secretRecheck: 2 * time.Second,
		snippetDelay:  1500 * time.Millisecond,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[Key](),
			workqueue.TypedRateLimitingQueueConfig[Key]{Name: "sim-builds"}),
	}
	// The reflector uses the watch-list protocol unless the client says it
	// does not support it (as client-go's fakes do).
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return client.BuildV1().Builds(metav1.NamespaceAll).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return client.BuildV1().Builds(metav1.NamespaceAll).Watch(ctx, opts)
		},
	}
	c.informer = cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, client), &buildv1.Build{},
		10*time.Minute, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	c.lister = buildlisters.NewBuildLister(c.informer.GetIndexer())
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueueWithSiblings(obj) },
		UpdateFunc: func(old, cur any) {
			ob, _ := old.(*buildv1.Build)
			nb, _ := cur.(*buildv1.Build)
			if ob != nil && nb != nil && ob.Status.Phase == nb.Status.Phase && ob.Status.Cancelled == nb.Status.Cancelled {
				c.enqueue(nb)
				return
			}
			c.enqueueWithSiblings(cur)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			c.enqueueWithSiblings(obj)
		},
	})
	return c
}

func (c *Controller) logf(format string, args ...any) {
	fmt.Fprintf(c.o.Out, "%s sim-controller: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func keyOf(b *buildv1.Build) Key { return Key{Namespace: b.Namespace, Name: b.Name} }

func (c *Controller) enqueue(obj any) {
	if b, ok := obj.(*buildv1.Build); ok {
		c.queue.Add(keyOf(b))
	}
}

// enqueueWithSiblings also queues the builds of the same BuildConfig still
// waiting in New: a phase change may let one of them start.
func (c *Controller) enqueueWithSiblings(obj any) {
	b, ok := obj.(*buildv1.Build)
	if !ok {
		return
	}
	c.queue.Add(keyOf(b))
	for _, s := range c.siblings(b) {
		if s.Name != b.Name && (s.Status.Phase == buildv1.BuildPhaseNew || s.Status.Phase == "") {
			c.queue.Add(keyOf(s))
		}
	}
}

// siblings lists the builds of b's BuildConfig (by label), b included.
func (c *Controller) siblings(b *buildv1.Build) []*buildv1.Build {
	bc := b.Labels[buildv1.BuildConfigLabel]
	if bc == "" {
		return nil
	}
	list, err := c.lister.Builds(b.Namespace).List(labels.SelectorFromSet(labels.Set{buildv1.BuildConfigLabel: bc}))
	if err != nil {
		return nil
	}
	return list
}

// Run runs the controller until ctx ends; executors are stopped on return.
func (c *Controller) Run(ctx context.Context) error {
	if c.initErr != nil {
		return c.initErr
	}
	c.runCtx = ctx
	informerDone := make(chan struct{})
	go func() {
		defer close(informerDone)
		c.informer.RunWithContext(ctx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		c.queue.ShutDown()
		<-informerDone
		return ctx.Err()
	}
	const workers = 4
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	c.mu.Lock()
	for _, r := range c.runs {
		r.cancel(errStopping)
	}
	c.mu.Unlock()
	wg.Wait()
	c.wg.Wait()
	<-informerDone
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	if err := c.sync(ctx, k); err != nil {
		if ctx.Err() != nil {
			return true
		}
		c.logf("build %s/%s: %v (will retry)", k.Namespace, k.Name, err)
		c.queue.AddRateLimited(k)
		return true
	}
	c.queue.Forget(k)
	return true
}

func (c *Controller) run(k Key) *runState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[k]
}

// stopRun stops the executor of k, if any.
func (c *Controller) stopRun(k Key, cause error) {
	if r := c.run(k); r != nil {
		r.cancel(cause)
	}
}

func (c *Controller) releaseSource(k Key) {
	if r, ok := c.o.Sources.(interface{ Release(Key) }); ok {
		r.Release(k)
	}
}

func (c *Controller) forgetSource(k Key) {
	if r, ok := c.o.Sources.(interface{ Forget(Key) }); ok {
		r.Forget(k)
	}
}

// sync brings one build forward.
func (c *Controller) sync(ctx context.Context, k Key) error {
	b, err := c.lister.Builds(k.Namespace).Get(k.Name)
	if apierrors.IsNotFound(err) {
		// Deleted: the pod goes with it.
		c.stopRun(k, errDeleted)
		c.o.Logs.Delete(k)
		if c.run(k) == nil {
			c.forgetSource(k)
		}
		return nil
	}
	if err != nil {
		return err
	}
	phase := b.Status.Phase
	if phase == "" {
		phase = buildv1.BuildPhaseNew
	}
	if isTerminal(phase) {
		c.stopRun(k, errTerminal)
		return nil
	}
	r := c.run(k)
	if r != nil && r.uid != b.UID {
		// The build was deleted and created again under the same name.
		r.cancel(errDeleted)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the executor of the previous build %s did not stop", k.Name)
		}
		r = nil
	}
	if b.Status.Cancelled {
		if r != nil && r.completesFirst {
			return nil // the "completes first" race: the builder finishes first
		}
		return c.cancel(ctx, b)
	}
	switch phase {
	case buildv1.BuildPhaseNew:
		if r != nil {
			return nil // being started; the lister has not caught up
		}
		return c.handleNew(ctx, b)
	default: // Pending, Running
		if r != nil {
			return nil
		}
		if phase == buildv1.BuildPhasePending && b.Status.Reason == buildv1.StatusReasonMissingPushSecret {
			return c.handleNew(ctx, b)
		}
		// No pod for an active build (e.g. the simulator restarted).
		_, err := c.finish(ctx, k, b.UID, buildv1.BuildPhaseError, buildv1.StatusReasonBuildPodDeleted, messageFor(buildv1.StatusReasonBuildPodDeleted), nil)
		return err
	}
}

// cancel moves a cancelled, non-terminal build to Cancelled at once and
// stops its executor (reference §7).
func (c *Controller) cancel(ctx context.Context, b *buildv1.Build) error {
	k := keyOf(b)
	c.stopRun(k, errCancelled)
	_, err := c.finish(ctx, k, b.UID, buildv1.BuildPhaseCancelled, buildv1.StatusReasonCancelledBuild, messageFor(buildv1.StatusReasonCancelledBuild), nil)
	return err
}

// isActive tells whether a build counts as Pending/Running for runPolicy:
// by its phase, or because this controller has started it.
func (c *Controller) isActive(b *buildv1.Build) bool {
	if b.Status.Phase == buildv1.BuildPhasePending || b.Status.Phase == buildv1.BuildPhaseRunning {
		return true
	}
	return !isTerminal(b.Status.Phase) && c.run(keyOf(b)) != nil
}

// handleNew decides whether a New build (or one Pending for its push
// secret) starts.
func (c *Controller) handleNew(ctx context.Context, b *buildv1.Build) error {
	c.policyMu.Lock()
	defer c.policyMu.Unlock()
	k := keyOf(b)
	if c.run(k) != nil {
		return nil
	}
	if b.Status.Phase == buildv1.BuildPhaseNew || b.Status.Phase == "" {
		siblings := c.siblings(b)
		if runPolicyOf(b) == buildv1.BuildRunPolicySerialLatestOnly {
			for _, v := range serialLatestOnlyVictims(b, siblings) {
				vk := keyOf(v)
				if _, _, err := c.update(ctx, vk, v.UID, func(x *buildv1.Build) bool {
					if x.Status.Cancelled || isTerminal(x.Status.Phase) || x.Status.Phase == buildv1.BuildPhaseRunning {
						return false
					}
					x.Status.Cancelled = true
					return true
				}); err != nil && !apierrors.IsNotFound(err) {
					return err
				}
				c.logf("build %s/%s: cancelled by the newer %s (SerialLatestOnly)", vk.Namespace, vk.Name, b.Name)
			}
		}
		if !isRunnable(b, siblings, c.isActive) {
			return nil
		}
		resolved, reason, err := c.resolveImages(ctx, b)
		if err != nil {
			return err
		}
		if reason != "" {
			// OCM looks again when image streams change; the simulator
			// polls.
			c.queue.AddAfter(k, c.secretRecheck)
			return c.stayNew(ctx, b, reason, messageFor(reason))
		}
		b = resolved
		if missing, err := c.missingResources(ctx, b); err != nil {
			return err
		} else if len(missing) > 0 {
			c.queue.AddAfter(k, c.secretRecheck) // look again: they may be created
			return c.stayNew(ctx, b, buildv1.StatusReasonGenericBuildFailed, "These resources do not exist: "+strings.Join(missing, ", "))
		}
	}
	if b.Status.Phase == buildv1.BuildPhasePending {
		// Waiting for its push secret: resolved when it went Pending, but
		// the executor needs the references again.
		resolved, reason, err := c.resolveImages(ctx, b)
		if err != nil {
			return err
		}
		if reason == "" {
			b = resolved
		}
	}
	if missing, err := c.pushSecretMissing(ctx, b); err != nil {
		return err
	} else if missing {
		outRef := b.Status.OutputDockerImageReference
		_, _, err := c.update(ctx, k, b.UID, func(x *buildv1.Build) bool {
			if x.Status.Cancelled {
				return false
			}
			ch := setPhase(x, buildv1.BuildPhasePending, buildv1.StatusReasonMissingPushSecret, messageFor(buildv1.StatusReasonMissingPushSecret), c.now())
			return setOutputRef(x, outRef) || ch
		})
		c.queue.AddAfter(k, c.secretRecheck)
		return err
	}
	return c.start(ctx, b)
}

// stayNew records why a build cannot start; binary builds fail instead
// (reference §4.3, binary early failures).
func (c *Controller) stayNew(ctx context.Context, b *buildv1.Build, reason buildv1.StatusReason, message string) error {
	if isBinary(b) {
		_, err := c.finish(ctx, keyOf(b), b.UID, buildv1.BuildPhaseFailed, reason, message, nil)
		return err
	}
	if b.Status.Reason == reason && b.Status.Message == message {
		return nil
	}
	_, _, err := c.update(ctx, keyOf(b), b.UID, func(x *buildv1.Build) bool {
		if x.Status.Phase != buildv1.BuildPhaseNew && x.Status.Phase != "" {
			return false
		}
		if x.Status.Reason == reason && x.Status.Message == message {
			return false
		}
		x.Status.Phase = buildv1.BuildPhaseNew
		x.Status.Reason, x.Status.Message = reason, message
		return true
	})
	return err
}

// resolveImages resolves what OCM resolves before a build starts
// (resolveImageReferences): image stream references of the strategy's from
// and of the source images, and the output reference. It returns a copy of b
// holding DockerImage pull specs by digest and
// status.outputDockerImageReference, for the executor; the stored Build
// keeps its spec. A reference that does not resolve gives the reason the
// build waits with in New: InvalidImageReference, or InvalidOutputReference
// when the output image stream does not exist.
func (c *Controller) resolveImages(ctx context.Context, b *buildv1.Build) (*buildv1.Build, buildv1.StatusReason, error) {
	out := b.DeepCopy()
	ref, ok, err := c.streams.outputReference(ctx, b.Namespace, out.Spec.Output.To)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, buildv1.StatusReasonInvalidOutputReference, nil
	}
	out.Status.OutputDockerImageReference = ref
	if c.streams == nil {
		if hasImageStreamReference(&out.Spec) {
			return nil, buildv1.StatusReasonInvalidImageReference, nil
		}
		return out, "", nil
	}
	if bad, err := c.streams.resolveBuildImages(ctx, b.Namespace, &out.Spec); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsBadRequest(err) || apierrors.IsConflict(err) {
			c.logf("build %s/%s: %s %s does not resolve: %v", b.Namespace, b.Name, bad.Kind, bad.Name, err)
			return nil, buildv1.StatusReasonInvalidImageReference, nil
		}
		return nil, "", err
	}
	return out, "", nil
}

// hasImageStreamReference reports an image stream reference among the
// strategy's from and the source images.
func hasImageStreamReference(spec *buildv1.BuildSpec) bool {
	refs := []corev1.ObjectReference{}
	if from := strategyFrom(&spec.Strategy); from != nil {
		refs = append(refs, *from)
	}
	for _, img := range spec.Source.Images {
		refs = append(refs, img.From)
	}
	for _, r := range refs {
		switch r.Kind {
		case kindImageStreamTag, kindImageStreamImage, kindImageStream:
			return true
		}
	}
	return false
}

// missingResources lists the source secrets and config maps that do not exist.
func (c *Controller) missingResources(ctx context.Context, b *buildv1.Build) ([]string, error) {
	var missing []string
	for _, s := range b.Spec.Source.Secrets {
		if _, err := c.kube.CoreV1().Secrets(b.Namespace).Get(ctx, s.Secret.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			missing = append(missing, "secret/"+s.Secret.Name)
		} else if err != nil {
			return nil, err
		}
	}
	for _, cm := range b.Spec.Source.ConfigMaps {
		if _, err := c.kube.CoreV1().ConfigMaps(b.Namespace).Get(ctx, cm.ConfigMap.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			missing = append(missing, "configmap/"+cm.ConfigMap.Name)
		} else if err != nil {
			return nil, err
		}
	}
	return missing, nil
}

func (c *Controller) pushSecretMissing(ctx context.Context, b *buildv1.Build) (bool, error) {
	ps := b.Spec.Output.PushSecret
	if ps == nil || ps.Name == "" {
		return false, nil
	}
	_, err := c.kube.CoreV1().Secrets(b.Namespace).Get(ctx, ps.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// setOutputRef sets status.outputDockerImageReference to ref (resolved by
// resolveImages) unless ref is empty.
func setOutputRef(b *buildv1.Build, ref string) bool {
	if ref != "" && b.Status.OutputDockerImageReference != ref {
		b.Status.OutputDockerImageReference = ref
		return true
	}
	return false
}

// start moves b to Pending (its pod is created) and runs its executor.
func (c *Controller) start(ctx context.Context, b *buildv1.Build) error {
	k := keyOf(b)
	kn, _ := readKnobs(b)
	rctx, cancel := context.WithCancelCause(c.runCtx)
	r := &runState{uid: b.UID, cancel: cancel, done: make(chan struct{}), completesFirst: kn.completesFirst}
	// A build of the same name before this one (deleted, recreated) leaves
	// nothing behind for this one.
	c.o.Logs.Delete(k)
	c.forgetSource(k)
	c.mu.Lock()
	c.runs[k] = r
	c.mu.Unlock()
	unregister := func() {
		c.mu.Lock()
		if c.runs[k] == r {
			delete(c.runs, k)
		}
		c.mu.Unlock()
		cancel(errStopping)
		close(r.done)
	}
	started := c.now()
	outRef := b.Status.OutputDockerImageReference
	updated, changed, err := c.update(ctx, k, b.UID, func(x *buildv1.Build) bool {
		if x.Status.Cancelled || isTerminal(x.Status.Phase) || x.Status.Phase == buildv1.BuildPhaseRunning {
			return false
		}
		ch := setPhase(x, buildv1.BuildPhasePending, "", "", started)
		return setOutputRef(x, outRef) || ch
	})
	if err != nil || !changed {
		unregister()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	c.logf("build %s/%s: Pending (%s)", k.Namespace, k.Name, runPolicyOf(updated))
	// The build pod runs with the references resolved (b's spec); the
	// stored Build keeps the ones it was created with.
	updated = updated.DeepCopy()
	updated.Spec = *b.Spec.DeepCopy()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer unregister()
		c.execute(rctx, r, updated, started)
	}()
	return nil
}

// execute runs the executor and records its outcome.
func (c *Controller) execute(ctx context.Context, r *runState, b *buildv1.Build, started time.Time) {
	k := keyOf(b)
	deadline := DefaultCompletionDeadline
	if d := b.Spec.CompletionDeadlineSeconds; d != nil && *d > 0 {
		deadline = time.Duration(*d) * time.Second
	}
	// The deadline counts from the pod's start, once it is scheduled (a pod
	// no node matches never starts, and never reaches its deadline).
	scheduled := c.awaitNode(ctx, b)
	timer := time.AfterFunc(deadline, func() {
		c.logf("build %s/%s: completionDeadlineSeconds (%s) exceeded", k.Namespace, k.Name, deadline)
		_, _ = c.finish(c.runCtx, k, b.UID, buildv1.BuildPhaseFailed, buildv1.StatusReasonGenericBuildFailed, messageFor(buildv1.StatusReasonGenericBuildFailed), nil)
		r.cancel(errDeadline)
	})
	defer timer.Stop()
	defer func() {
		if isBinary(b) {
			c.releaseSource(k)
		}
	}()
	ex := &executor{c: c, key: k, b: b, work: filepath.Join(c.o.WorkDir, "builds", k.Namespace, fmt.Sprintf("%s-%d", k.Name, started.UnixNano()))}
	var out outcome // the zero outcome: ctx ended before the pod was scheduled
	if scheduled {
		out = ex.run(ctx)
	}
	if ctx.Err() != nil || out.phase == "" {
		if cause := context.Cause(ctx); cause != nil && cause != errStopping {
			c.logf("build %s/%s: builder stopped: %v", k.Namespace, k.Name, cause)
		}
		if ctx.Err() == nil {
			// the executor gave up (e.g. the build was cancelled before Running)
			c.o.Logs.Close(k)
		}
		if errors.Is(context.Cause(ctx), errDeleted) {
			// The log goes with the build, also what the builder wrote
			// while it stopped, after sync's Delete.
			c.o.Logs.Delete(k)
		}
		return
	}
	// The builder reports Failed itself (builds/details) before its pod
	// exits; the controller adds logSnippet only once the pod has
	// terminated (§5.4): two writes. Other outcomes are the controller's,
	// in one write.
	builderFailed := out.phase == buildv1.BuildPhaseFailed
	changed, err := c.finishWith(c.runCtx, k, b.UID, out.phase, out.reason, out.message, !builderFailed, func(x *buildv1.Build) {
		if out.digest != "" {
			if x.Status.Output.To == nil {
				x.Status.Output.To = &buildv1.BuildStatusOutputTo{}
			}
			x.Status.Output.To.ImageDigest = out.digest
		}
		if len(ex.stages) > 0 {
			x.Status.Stages = ex.stages
		}
		setOutputRef(x, b.Status.OutputDockerImageReference)
	})
	if err != nil && c.runCtx.Err() == nil {
		c.logf("build %s/%s: recording %s: %v", k.Namespace, k.Name, out.phase, err)
	}
	if changed && builderFailed {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if sleepCtx(c.runCtx, c.snippetDelay) {
				c.addLogSnippet(c.runCtx, k, b.UID)
			}
		}()
	}
}

// addLogSnippet sets logSnippet on a Failed or Error build that has none
// (the controller saw its pod terminate).
func (c *Controller) addLogSnippet(ctx context.Context, k Key, uid types.UID) {
	snippet := c.snippetOf(k)
	if snippet == "" {
		return
	}
	_, _, err := c.update(ctx, k, uid, func(x *buildv1.Build) bool {
		if (x.Status.Phase != buildv1.BuildPhaseFailed && x.Status.Phase != buildv1.BuildPhaseError) || x.Status.LogSnippet != "" {
			return false
		}
		x.Status.LogSnippet = snippet
		return true
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		c.logf("build %s/%s: adding logSnippet: %v", k.Namespace, k.Name, err)
	}
}

// snippetOf is the logSnippet of the build's log.
func (c *Controller) snippetOf(k Key) string {
	lines, _ := c.o.Logs.Read(k, time.Time{})
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.Text
	}
	return logSnippet(texts)
}

// markRunning moves the build to Running (the git-clone container started).
func (c *Controller) markRunning(ctx context.Context, k Key, uid types.UID) error {
	_, changed, err := c.update(ctx, k, uid, func(x *buildv1.Build) bool {
		if x.Status.Cancelled {
			return false
		}
		return setPhase(x, buildv1.BuildPhaseRunning, "", "", c.now())
	})
	if err != nil {
		return err
	}
	if !changed {
		return errors.New("the build can no longer run")
	}
	return nil
}

// setRevision writes spec.revision after the clone unless it is set.
func (c *Controller) setRevision(ctx context.Context, k Key, uid types.UID, rev *buildv1.GitSourceRevision) error {
	_, _, err := c.update(ctx, k, uid, func(x *buildv1.Build) bool {
		if x.Spec.Revision != nil || isTerminal(x.Status.Phase) {
			return false
		}
		r := *rev
		x.Spec.Revision = &buildv1.SourceRevision{Type: buildv1.BuildSourceGit, Git: &r}
		return true
	})
	return err
}

// finish moves a build to a terminal phase (unless it already is), with the
// completion fields and the log snippet, closes its log and prunes the
// BuildConfig's history. It reports whether this call made the transition.
func (c *Controller) finish(ctx context.Context, k Key, uid types.UID, phase buildv1.BuildPhase, reason buildv1.StatusReason, message string, apply func(*buildv1.Build)) (bool, error) {
	return c.finishWith(ctx, k, uid, phase, reason, message, true, apply)
}

// finishWith is finish; withSnippet=false leaves logSnippet out (the
// builder's own Failed report, before its pod has terminated).
func (c *Controller) finishWith(ctx context.Context, k Key, uid types.UID, phase buildv1.BuildPhase, reason buildv1.StatusReason, message string, withSnippet bool, apply func(*buildv1.Build)) (bool, error) {
	snippet := ""
	if withSnippet && (phase == buildv1.BuildPhaseFailed || phase == buildv1.BuildPhaseError) {
		snippet = c.snippetOf(k)
	}
	updated, changed, err := c.update(ctx, k, uid, func(x *buildv1.Build) bool {
		if isTerminal(x.Status.Phase) {
			return false
		}
		if !setPhase(x, phase, reason, message, c.now()) {
			return false
		}
		if snippet != "" && x.Status.LogSnippet == "" {
			x.Status.LogSnippet = snippet
		}
		if apply != nil {
			apply(x)
		}
		return true
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil // deleted (sync forgets its log), or another incarnation
		}
		return false, err
	}
	c.o.Logs.Close(k)
	if changed {
		c.logf("build %s/%s: %s %s", k.Namespace, k.Name, phase, reason)
		if isBinary(updated) {
			c.releaseSource(k) // a pending upload fails at once
		}
		c.prune(ctx, updated)
	}
	return changed, nil
}

// conflictBackoff retries updates that lose a resourceVersion race.
var conflictBackoff = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Cap: time.Second}

// update reads the build, applies mutate and writes it back with its
// resourceVersion, retrying conflicts. mutate returns false for no change.
// With uid set, a build of that name but another UID (a new incarnation)
// counts as not found.
func (c *Controller) update(ctx context.Context, k Key, uid types.UID, mutate func(*buildv1.Build) bool) (*buildv1.Build, bool, error) {
	var out *buildv1.Build
	changed := false
	err := retry.OnError(conflictBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err)
	}, func() error {
		changed = false
		b, err := c.client.BuildV1().Builds(k.Namespace).Get(ctx, k.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if uid != "" && b.UID != uid {
			return apierrors.NewNotFound(buildv1.Resource("builds"), k.Name)
		}
		if !mutate(b) {
			out = b
			return nil
		}
		out, err = c.client.BuildV1().Builds(k.Namespace).Update(ctx, b, metav1.UpdateOptions{})
		changed = err == nil
		return err
	})
	return out, changed, err
}

// prune deletes the builds of b's BuildConfig beyond its history limits.
func (c *Controller) prune(ctx context.Context, b *buildv1.Build) {
	if b == nil {
		return
	}
	label := b.Labels[buildv1.BuildConfigLabel]
	if label == "" {
		return
	}
	bcName := b.Annotations[buildv1.BuildConfigAnnotation]
	if bcName == "" {
		bcName = label
	}
	bc, err := c.client.BuildV1().BuildConfigs(b.Namespace).Get(ctx, bcName, metav1.GetOptions{})
	if err != nil {
		return
	}
	list, err := c.client.BuildV1().Builds(b.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{buildv1.BuildConfigLabel: label}).String()})
	if err != nil {
		c.logf("pruning builds of %s/%s: %v", b.Namespace, bcName, err)
		return
	}
	builds := make([]*buildv1.Build, len(list.Items))
	for i := range list.Items {
		builds[i] = &list.Items[i]
	}
	for _, v := range buildsToPrune(builds, bc.Spec.SuccessfulBuildsHistoryLimit, bc.Spec.FailedBuildsHistoryLimit) {
		err := c.client.BuildV1().Builds(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			c.logf("pruning build %s/%s: %v", v.Namespace, v.Name, err)
			continue
		}
		c.logf("build %s/%s: pruned (history limits of %s)", v.Namespace, v.Name, bcName)
		c.o.Logs.Delete(keyOf(v))
		c.forgetSource(keyOf(v))
	}
}

// copyBuildInputs puts the build's input secrets and config maps into the
// context directory (at destinationDir), as the builder does; image sources
// are the executor's (extractSourceImages).
func (c *Controller) copyBuildInputs(ctx context.Context, b *buildv1.Build, ctxDir string, logf func(string)) error {
	write := func(kind, name, dest string, data map[string][]byte) error {
		dir := filepath.Join(ctxDir, filepath.FromSlash(path.Clean("/"+dest)))
		if !within(ctxDir, dir) {
			return fmt.Errorf("%s %q: destinationDir %q leaves the context directory", kind, name, dest)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, k := range simKeys(data) {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(k)), data[k], 0o600); err != nil {
				return err
			}
		}
		logf(fmt.Sprintf("Copying %s %q to %q", kind, name, path.Clean("/"+dest)))
		return nil
	}
	for _, s := range b.Spec.Source.Secrets {
		sec, err := c.kube.CoreV1().Secrets(b.Namespace).Get(ctx, s.Secret.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading secret %q: %v", s.Secret.Name, err)
		}
		if err := write("secret", s.Secret.Name, s.DestinationDir, sec.Data); err != nil {
			return err
		}
	}
	for _, cmSrc := range b.Spec.Source.ConfigMaps {
		cm, err := c.kube.CoreV1().ConfigMaps(b.Namespace).Get(ctx, cmSrc.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading config map %q: %v", cmSrc.ConfigMap.Name, err)
		}
		data := map[string][]byte{}
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			data[k] = v
		}
		if err := write("config map", cmSrc.ConfigMap.Name, cmSrc.DestinationDir, data); err != nil {
			return err
		}
	}
	return nil
}

// simKeys returns m's keys in order.
func simKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// resolveEnv resolves the strategy environment (values, and valueFrom
// config map and secret keys).
func (c *Controller) resolveEnv(ctx context.Context, ns string, env []corev1.EnvVar) ([]kv, error) {
	var out []kv
	for _, e := range env {
		if e.ValueFrom == nil {
			out = append(out, kv{e.Name, e.Value})
			continue
		}
		switch vf := e.ValueFrom; {
		case vf.ConfigMapKeyRef != nil:
			cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{})
			v, ok := "", false
			if err == nil {
				v, ok = cm.Data[vf.ConfigMapKeyRef.Key]
			}
			if !ok {
				if vf.ConfigMapKeyRef.Optional != nil && *vf.ConfigMapKeyRef.Optional {
					continue
				}
				return nil, fmt.Errorf("unable to resolve environment variable %s: key %q of config map %q not found", e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name)
			}
			out = append(out, kv{e.Name, v})
		case vf.SecretKeyRef != nil:
			s, err := c.kube.CoreV1().Secrets(ns).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{})
			var v []byte
			ok := false
			if err == nil {
				v, ok = s.Data[vf.SecretKeyRef.Key]
			}
			if !ok {
				if vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional {
					continue
				}
				return nil, fmt.Errorf("unable to resolve environment variable %s: key %q of secret %q not found", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
			}
			out = append(out, kv{e.Name, string(v)})
		default:
			return nil, fmt.Errorf("unable to resolve environment variable %s: only configMapKeyRef and secretKeyRef are supported", e.Name)
		}
	}
	return out, nil
}

// --- pure decision logic ---

func isTerminal(p buildv1.BuildPhase) bool {
	switch p {
	case buildv1.BuildPhaseNew, buildv1.BuildPhasePending, buildv1.BuildPhaseRunning, "":
		return false
	}
	return true
}

// validTransition is OCM's isValidTransition (reference §5.1).
func validTransition(from, to buildv1.BuildPhase) bool {
	if from == "" {
		from = buildv1.BuildPhaseNew
	}
	if from == to {
		return true
	}
	switch from {
	case buildv1.BuildPhaseNew:
		return true
	case buildv1.BuildPhasePending:
		return to != buildv1.BuildPhaseNew
	case buildv1.BuildPhaseRunning:
		return to != buildv1.BuildPhaseNew && to != buildv1.BuildPhasePending
	}
	return false
}

// setPhase applies a phase transition with its reason and message, the
// timestamps, duration and conditions; false if the transition is invalid
// or changes nothing.
func setPhase(b *buildv1.Build, to buildv1.BuildPhase, reason buildv1.StatusReason, message string, now time.Time) bool {
	from := b.Status.Phase
	if from == "" {
		from = buildv1.BuildPhaseNew
	}
	if !validTransition(from, to) {
		return false
	}
	if from == to && b.Status.Phase != "" && b.Status.Reason == reason && b.Status.Message == message {
		return false
	}
	now = now.UTC().Truncate(time.Second)
	b.Status.Phase, b.Status.Reason, b.Status.Message = to, reason, message
	if to == buildv1.BuildPhaseRunning && b.Status.StartTimestamp == nil {
		t := metav1.NewTime(now)
		b.Status.StartTimestamp = &t
	}
	if isTerminal(to) {
		if b.Status.StartTimestamp == nil {
			t := metav1.NewTime(now)
			b.Status.StartTimestamp = &t
		}
		if b.Status.CompletionTimestamp == nil {
			t := metav1.NewTime(now)
			b.Status.CompletionTimestamp = &t
		}
		b.Status.Duration = buildDuration(b.Status.StartTimestamp.Time, b.Status.CompletionTimestamp.Time)
	}
	setCondition(b, to, reason, message, now)
	return true
}

// buildDuration is completion - start computed on whole seconds (§5.4).
func buildDuration(start, completion time.Time) time.Duration {
	return completion.Truncate(time.Second).Sub(start.Truncate(time.Second))
}

// setCondition keeps one condition per phase: the current one True, the
// others False.
func setCondition(b *buildv1.Build, phase buildv1.BuildPhase, reason buildv1.StatusReason, message string, now time.Time) {
	t := metav1.NewTime(now)
	found := false
	for i := range b.Status.Conditions {
		c := &b.Status.Conditions[i]
		if c.Type == buildv1.BuildConditionType(phase) {
			found = true
			if c.Status != corev1.ConditionTrue {
				c.LastTransitionTime = t
			}
			c.Status, c.Reason, c.Message, c.LastUpdateTime = corev1.ConditionTrue, string(reason), message, t
			continue
		}
		if c.Status == corev1.ConditionTrue {
			c.Status, c.LastTransitionTime, c.LastUpdateTime = corev1.ConditionFalse, t, t
		}
	}
	if !found {
		b.Status.Conditions = append(b.Status.Conditions, buildv1.BuildCondition{
			Type: buildv1.BuildConditionType(phase), Status: corev1.ConditionTrue,
			Reason: string(reason), Message: message, LastUpdateTime: t, LastTransitionTime: t,
		})
	}
}

// logSnippet is OCM's logSnippet of a log tail (§5.4): trailing newlines
// trimmed, the last 5 lines, lines over 120 characters shortened to their
// first 58 characters, "..." and their last 59.
func logSnippet(lines []string) string {
	text := strings.TrimRight(strings.Join(lines, "\n"), "\n")
	if text == "" {
		return ""
	}
	parts := strings.Split(text, "\n")
	if len(parts) > 5 {
		parts = parts[len(parts)-5:]
	}
	for i, l := range parts {
		if r := []rune(l); len(r) > 120 {
			parts[i] = string(r[:58]) + "..." + string(r[len(r)-59:])
		}
	}
	return strings.Join(parts, "\n")
}

// buildNumber is the openshift.io/build.number annotation, or the name's
// numeric suffix.
func buildNumber(b *buildv1.Build) int64 {
	if s := b.Annotations[buildv1.BuildNumberAnnotation]; s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	if i := strings.LastIndex(b.Name, "-"); i >= 0 {
		if n, err := strconv.ParseInt(b.Name[i+1:], 10, 64); err == nil {
			return n
		}
	}
	return 0
}

func runPolicyOf(b *buildv1.Build) buildv1.BuildRunPolicy {
	switch p := buildv1.BuildRunPolicy(b.Labels[buildv1.BuildRunPolicyLabel]); p {
	case buildv1.BuildRunPolicyParallel, buildv1.BuildRunPolicySerialLatestOnly:
		return p
	}
	return buildv1.BuildRunPolicySerial
}

// nextBuilds is OCM's GetNextConfigBuild: the builds of a BuildConfig that may
// start next (the lowest-numbered New one, or every queued Parallel build if
// that one is Parallel), and whether any build is Pending or Running.
func nextBuilds(siblings []*buildv1.Build, active func(*buildv1.Build) bool) ([]*buildv1.Build, bool) {
	var queued []*buildv1.Build
	running := false
	for _, s := range siblings {
		if active(s) {
			running = true
			continue
		}
		if (s.Status.Phase == buildv1.BuildPhaseNew || s.Status.Phase == "") && !s.Status.Cancelled {
			queued = append(queued, s)
		}
	}
	var next *buildv1.Build
	for _, q := range queued {
		if next == nil || buildNumber(q) < buildNumber(next) {
			next = q
		}
	}
	if next == nil {
		return nil, running
	}
	if runPolicyOf(next) == buildv1.BuildRunPolicyParallel {
		var out []*buildv1.Build
		for _, q := range queued {
			if runPolicyOf(q) == buildv1.BuildRunPolicyParallel {
				out = append(out, q)
			}
		}
		return out, running
	}
	return []*buildv1.Build{next}, running
}

// isRunnable applies the build's runPolicy (§2.3) among its siblings (the
// builds of its BuildConfig); active tells which count as Pending/Running.
func isRunnable(b *buildv1.Build, siblings []*buildv1.Build, active func(*buildv1.Build) bool) bool {
	if b.Labels[buildv1.BuildConfigLabel] == "" {
		return true
	}
	if runPolicyOf(b) == buildv1.BuildRunPolicyParallel {
		for _, s := range siblings {
			if s.Name != b.Name && runPolicyOf(s) != buildv1.BuildRunPolicyParallel && active(s) {
				return false
			}
		}
		return true
	}
	next, running := nextBuilds(siblings, active)
	if running {
		return false
	}
	for _, n := range next {
		if n.Name == b.Name {
			return true
		}
	}
	return false
}

// serialLatestOnlyVictims are the queued (New or Pending, not yet
// cancelled) builds older than b that SerialLatestOnly cancels.
func serialLatestOnlyVictims(b *buildv1.Build, siblings []*buildv1.Build) []*buildv1.Build {
	var out []*buildv1.Build
	n := buildNumber(b)
	for _, s := range siblings {
		if s.Name == b.Name || s.Status.Cancelled || buildNumber(s) >= n {
			continue
		}
		switch s.Status.Phase {
		case buildv1.BuildPhaseNew, "", buildv1.BuildPhasePending:
			out = append(out, s)
		}
	}
	return out
}

// buildsToPrune picks the builds beyond the history limits (§2.4): Complete
// builds against successful, Failed, Error and Cancelled against failed;
// the newest are kept. A nil limit keeps everything.
func buildsToPrune(builds []*buildv1.Build, successful, failed *int32) []*buildv1.Build {
	var ok, bad []*buildv1.Build
	for _, b := range builds {
		switch b.Status.Phase {
		case buildv1.BuildPhaseComplete:
			ok = append(ok, b)
		case buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
			bad = append(bad, b)
		}
	}
	newestFirst := func(s []*buildv1.Build) {
		sort.SliceStable(s, func(i, j int) bool {
			ti, tj := s[i].CreationTimestamp.Time, s[j].CreationTimestamp.Time
			if !ti.Equal(tj) {
				return ti.After(tj)
			}
			return buildNumber(s[i]) > buildNumber(s[j])
		})
	}
	var out []*buildv1.Build
	if successful != nil && len(ok) > int(*successful) {
		newestFirst(ok)
		out = append(out, ok[*successful:]...)
	}
	if failed != nil && len(bad) > int(*failed) {
		newestFirst(bad)
		out = append(out, bad[*failed:]...)
	}
	return out
}
