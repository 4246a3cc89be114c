package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/kmeta"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	tektoninformers "github.com/tektoncd/pipeline/pkg/client/informers/externalversions"
	tektonpod "github.com/tektoncd/pipeline/pkg/pod"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/result"
	"github.com/tektoncd/pipeline/pkg/termination"
)

// NodeName is the node the executor's pods are bound to. The executor runs
// their containers; the sandbox's kubelet (test/tools/kubelet) registers the
// Node and serves its kubelet API (logs, exec, attach) from what the
// executor records (containerlog.go).
const NodeName = "sandbox"

const (
	// Tekton's entrypoint time format for StartedAt.
	entrypointTimeFormat = "2006-01-02T15:04:05.000Z07:00"
	// Annotation Tekton's keep-pod-on-cancel mode sets on the pod.
	cancelAnnotation      = "tekton.dev/cancel"
	cancelAnnotationValue = "CANCEL"
	// The grace period of a pod deleted with default options (Tekton never
	// sets terminationGracePeriodSeconds).
	defaultGracePeriod = 30 * time.Second
	// config-defaults default-timeout-minutes.
	defaultTaskRunTimeout = 60 * time.Minute
	// The release Tekton would stamp on its pods.
	tektonRelease = "v1.12.0"
)

// Executor stands in for Tekton's TaskRun controller and the kubelet: it
// watches tekton.dev/v1 TaskRuns, creates their pod object (bound to node
// "sandbox"), runs the steps in order as local processes, keeps the pod's
// and the TaskRun's status the way Tekton and the kubelet do (computing the
// TaskRun status with Tekton's own pod.MakeTaskRunStatus), and honours
// cancellation and timeouts in both of Tekton's modes.
type Executor struct {
	kube   kubernetes.Interface
	tekton tektonclient.Interface
	dir    string
	images map[string]string
	// server returns the URL and CA steps' kubeconfigs point at.
	server func() (string, []byte)
	// path is steps' PATH.
	path string
	// gitConfig is the steps' system git configuration (the image's
	// /etc/gitconfig): the git server's aliases (Options.GitAliases).
	gitConfig string
	log       *zap.SugaredLogger
	logOut    io.Writer

	podLister corelisters.PodLister
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu   sync.Mutex
	seen map[types.UID]bool
	runs map[types.UID]*run
	pods map[string]*run // namespace/pod name → run while its processes may run
}

func (sb *Sandbox) startExecutor(ctx, runCtx context.Context) error {
	images := map[string]string{
		GitImage:            sb.bins.Git,
		WaiterImage:         sb.bins.Waiter,
		OcbuildImage:        sb.bins.Ocbuild,
		ShippedOcbuildImage: sb.bins.Ocbuild,
		HostImage:           "",
	}
	for _, img := range sb.opts.OcbuildImages {
		images[img] = sb.bins.Ocbuild
	}
	for img, bin := range sb.opts.Images {
		images[img] = bin
	}
	for img, pkg := range sb.opts.BuildImages {
		images[img] = sb.bins.Extra[pkg]
	}
	server := func() (string, []byte) { return sb.APIServerURL, sb.CAData }
	if sb.FrontDoor != nil {
		fd := sb.FrontDoor
		server = func() (string, []byte) {
			if fd.CAData != nil {
				return fd.URL, fd.CAData
			}
			return fd.URL, sb.CAData
		}
	}
	logFile, err := os.OpenFile(filepath.Join(sb.Dir, "logs", "executor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	e := &Executor{
		kube:      sb.Kube,
		tekton:    sb.Tekton,
		dir:       sb.executorDir(),
		images:    images,
		server:    server,
		path:      sb.bins.ToolsDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		gitConfig: sb.gitConfig,
		logOut:    logFile,
		seen:      map[types.UID]bool{},
		runs:      map[types.UID]*run{},
		pods:      map[string]*run{},
	}
	var logOut io.Writer = logFile
	if sb.opts.ExecutorLog != nil {
		logOut = io.MultiWriter(logFile, sb.opts.ExecutorLog)
	}
	e.log = zap.New(zapCoreTo(logOut)).Sugar()
	e.ctx, e.cancel = context.WithCancel(runCtx)
	sb.Executor = e
	return e.start(ctx)
}

func (e *Executor) start(ctx context.Context) error {
	podFactory := informers.NewSharedInformerFactoryWithOptions(e.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", NodeName).String()
	}))
	podInformer := podFactory.Core().V1().Pods()
	e.podLister = podInformer.Lister()
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.podChanged(obj) },
		UpdateFunc: func(_, obj any) { e.podChanged(obj) },
		DeleteFunc: e.podDeleted,
	}); err != nil {
		return err
	}
	trFactory := tektoninformers.NewSharedInformerFactory(e.tekton, 0)
	trInformer := trFactory.Tekton().V1().TaskRuns().Informer()
	if _, err := trInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.taskRunChanged(obj) },
		UpdateFunc: func(_, obj any) { e.taskRunChanged(obj) },
	}); err != nil {
		return err
	}
	podFactory.Start(e.ctx.Done())
	trFactory.Start(e.ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced, trInformer.HasSynced) {
		return errors.New("executor informers did not sync")
	}
	return nil
}

// stop kills every running step and waits for the runs to end.
func (e *Executor) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
}

func (e *Executor) logf(format string, args ...any) { e.log.Infof(format, args...) }

func (e *Executor) taskRunChanged(obj any) {
	tr, ok := obj.(*v1.TaskRun)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.runs[tr.UID]; r != nil {
		offer(r.trUpdates, tr.DeepCopy())
		return
	}
	if e.seen[tr.UID] || tr.IsDone() || e.ctx.Err() != nil {
		return
	}
	e.seen[tr.UID] = true
	r := newRun(e, tr.DeepCopy())
	e.runs[tr.UID] = r
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		r.execute(e.ctx)
		e.mu.Lock()
		delete(e.runs, tr.UID)
		e.mu.Unlock()
	}()
}

func (e *Executor) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	e.mu.Lock()
	r := e.pods[p.Namespace+"/"+p.Name]
	e.mu.Unlock()
	if r != nil && r.podUID == p.UID {
		offer(r.podUpdates, p.DeepCopy())
		return
	}
	// As the kubelet: a pod being deleted with no process left is removed.
	if p.DeletionTimestamp != nil {
		e.forceDelete(p)
	}
}

func (e *Executor) podDeleted(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		if d, ok2 := obj.(cache.DeletedFinalStateUnknown); ok2 {
			p, ok = d.Obj.(*corev1.Pod)
		}
		if !ok {
			return
		}
	}
	e.mu.Lock()
	r := e.pods[p.Namespace+"/"+p.Name]
	e.mu.Unlock()
	if r != nil && r.podUID == p.UID {
		r.podGoneOnce.Do(func() { close(r.podGone) })
	}
}

func (e *Executor) forceDelete(p *corev1.Pod) {
	err := e.kube.CoreV1().Pods(p.Namespace).Delete(e.ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && e.ctx.Err() == nil {
		e.logf("deleting pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// keepPodOnCancel reads Tekton's feature flag, as Tekton's controller does
// at cancel time.
func (e *Executor) keepPodOnCancel(ctx context.Context) bool {
	cm, err := e.kube.CoreV1().ConfigMaps(TektonNamespace).Get(ctx, FeatureFlagsConfig, metav1.GetOptions{})
	return err == nil && strings.EqualFold(strings.TrimSpace(cm.Data[keepPodOnCancelKey]), "true")
}

// binaryFor maps an image to the binary that plays it; ok=false if unknown.
// An empty binary means "run command[0] from the host".
func (e *Executor) binaryFor(image string) (string, bool) {
	if b, ok := e.images[image]; ok {
		return b, true
	}
	key := imageRepository(image)
	for img, b := range e.images {
		if imageRepository(img) == key {
			return b, true
		}
	}
	return "", false
}

// imageRepository strips the tag and digest of an image reference.
func imageRepository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// executorDir holds the executor's TaskRun directories.
func (sb *Sandbox) executorDir() string { return filepath.Join(sb.Dir, "taskruns") }

// TaskRunDir is the directory holding a TaskRun's workspace, results,
// step logs and step exit records.
func (e *Executor) TaskRunDir(namespace, name string) string {
	return filepath.Join(e.dir, namespace, name)
}

// StepLog returns what a step wrote to stdout and stderr.
func (e *Executor) StepLog(namespace, taskRun, step string) (string, error) {
	b, err := os.ReadFile(filepath.Join(e.TaskRunDir(namespace, taskRun), "logs", step+".log"))
	return string(b), err
}

// StepExit returns how a step's process ended, as os.ProcessState prints it
// ("exit status 0", "signal: killed", …).
func (e *Executor) StepExit(namespace, taskRun, step string) (string, error) {
	b, err := os.ReadFile(filepath.Join(e.TaskRunDir(namespace, taskRun), "steps", step, "exit"))
	return strings.TrimSpace(string(b)), err
}

// offer replaces whatever is pending in a one-slot channel with v.
func offer[T any](ch chan T, v T) {
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}

// run is one TaskRun being executed.
type run struct {
	e           *Executor
	tr          *v1.TaskRun // latest seen
	trUpdates   chan *v1.TaskRun
	podUpdates  chan *corev1.Pod
	podGone     chan struct{}
	podGoneOnce sync.Once

	dir    string
	spec   *v1.TaskSpec // as declared (status.taskSpec)
	ts     *v1.TaskSpec // after Tekton's substitutions
	base   v1.TaskRunStatus
	pod    *corev1.Pod // the pod as this kubelet reports it
	podUID types.UID
	done   bool // the TaskRun is done (failed by cancel/timeout or finished)
	sa     string
	paths  pathMap
	vols   map[string]string // volume name → host dir
}

func newRun(e *Executor, tr *v1.TaskRun) *run {
	return &run{
		e:          e,
		tr:         tr,
		trUpdates:  make(chan *v1.TaskRun, 1),
		podUpdates: make(chan *corev1.Pod, 1),
		podGone:    make(chan struct{}),
		dir:        e.TaskRunDir(tr.Namespace, tr.Name),
	}
}

func (r *run) logf(format string, args ...any) {
	r.e.logf("taskrun %s/%s: "+format, append([]any{r.tr.Namespace, r.tr.Name}, args...)...)
}

func (r *run) execute(ctx context.Context) {
	tr := r.tr
	r.logf("started")
	r.base = *tr.Status.DeepCopy()
	r.base.InitializeConditions()
	podName := kmeta.ChildName(tr.Name, "-pod")

	if tr.IsCancelled() {
		// Cancelled before a pod exists: failTaskRun without a pod.
		r.fail(ctx, v1.TaskRunReasonCancelled, fmt.Sprintf("TaskRun %q was cancelled. %s", tr.Name, tr.Spec.StatusMessage))
		return
	}
	if tr.Spec.TaskSpec == nil {
		r.fail(ctx, v1.TaskRunReasonFailedResolution, "the sandbox executor runs only TaskRuns with an embedded taskSpec")
		return
	}
	r.spec = tr.Spec.TaskSpec.DeepCopy()
	r.base.TaskSpec = r.spec.DeepCopy()
	r.ts = substitute(tr, r.spec)
	r.sa = tr.Spec.ServiceAccountName
	if r.sa == "" {
		r.sa = "default"
	}
	for _, d := range []string{"workspace", "results", "home", "creds", "tekton-steps", "logs", "steps", "volumes"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o777); err != nil {
			r.fail(ctx, v1.TaskRunReasonPodCreationFailed, err.Error())
			return
		}
	}

	// Tekton creates the pod; the TaskRun records its name.
	pod, err := r.createPod(ctx, podName)
	if err != nil {
		r.fail(ctx, v1.TaskRunReasonPodCreationFailed, fmt.Sprintf("failed to create task run pod %q: %v", tr.Name, err))
		return
	}
	r.pod = pod
	r.podUID = pod.UID
	r.base.PodName = pod.Name
	r.e.mu.Lock()
	r.e.pods[pod.Namespace+"/"+pod.Name] = r
	r.e.mu.Unlock()
	defer r.releasePod()
	if err := r.linkPod(); err != nil {
		r.logf("recording the pod for the kubelet: %v", err)
	}
	defer r.terminateContainerRecords()

	// The kubelet's part: volumes, service-account token, then containers.
	if err := r.prepare(ctx); err != nil {
		r.setWaiting(0, string(v1.TaskRunReasonCreateContainerConfigError), err.Error())
		r.fail(ctx, v1.TaskRunReasonCreateContainerConfigError, fmt.Sprintf("Failed to create pod due to config error: %v", err))
		return
	}
	r.pod.Status.Phase = corev1.PodRunning
	r.pod.Status.StartTime = ptr.To(metav1.Now())
	r.publish(ctx)

	timeout := defaultTaskRunTimeout
	if tr.Spec.Timeout != nil {
		timeout = tr.Spec.Timeout.Duration
	}
	var timeoutC <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Until(r.base.StartTime.Add(timeout)))
		defer t.Stop()
		timeoutC = t.C
	}
	w := &waiter{timeoutC: timeoutC, timeout: timeout}

	failed := false
	for i, step := range r.ts.Steps {
		if r.done {
			break
		}
		if failed {
			r.skipStep(i)
			continue
		}
		exitCode, ok := r.runStep(ctx, i, step, w)
		if !ok {
			return
		}
		if exitCode != 0 {
			failed = true
		}
	}
	if r.done {
		return
	}
	// Tekton's reconciler looks at spec.status before the pod: a TaskRun
	// cancelled while its step was exiting (a step that watches its own
	// TaskRun may end first) fails as cancelled, not with the step's exit.
	if cur, err := r.e.tekton.TektonV1().TaskRuns(r.tr.Namespace).Get(ctx, r.tr.Name, metav1.GetOptions{}); err == nil && cur.IsCancelled() {
		r.fail(ctx, v1.TaskRunReasonCancelled, fmt.Sprintf("TaskRun %q was cancelled. %s", cur.Name, cur.Spec.StatusMessage))
		return
	}
	if failed {
		r.pod.Status.Phase = corev1.PodFailed
	} else {
		r.pod.Status.Phase = corev1.PodSucceeded
	}
	r.publish(ctx)
	r.logf("finished: %s", r.pod.Status.Phase)
}

// waiter carries the timeout across steps.
type waiter struct {
	timeoutC <-chan time.Time
	timeout  time.Duration
}

// releasePod stops routing pod events to this run and, as the kubelet,
// removes the pod if it is being deleted.
func (r *run) releasePod() {
	r.e.mu.Lock()
	delete(r.e.pods, r.pod.Namespace+"/"+r.pod.Name)
	r.e.mu.Unlock()
	if p, err := r.e.podLister.Pods(r.pod.Namespace).Get(r.pod.Name); err == nil && p.UID == r.podUID && p.DeletionTimestamp != nil {
		r.e.forceDelete(p)
	}
}

// substitute applies Tekton's own substitutions, as the TaskRun reconciler
// does before building the pod.
func substitute(tr *v1.TaskRun, spec *v1.TaskSpec) *v1.TaskSpec {
	ts := spec.DeepCopy()
	var defaults []v1.ParamSpec
	if len(ts.Params) > 0 {
		defaults = append(defaults, ts.Params...)
	}
	ts = resources.ApplyParameters(ts, tr, defaults...)
	ts = resources.ApplyContexts(ts, tr.Name, tr)
	ts = resources.ApplyResults(ts)
	ts = resources.ApplyArtifacts(ts)
	ts = resources.ApplyStepExitCodePath(ts)
	declared := map[string]bool{}
	for _, w := range ts.Workspaces {
		declared[w.Name] = true
	}
	for _, w := range tr.Spec.Workspaces {
		if !declared[w.Name] {
			ts.Workspaces = append(ts.Workspaces, v1.WorkspaceDeclaration{Name: w.Name})
		}
	}
	ts = resources.ApplyWorkspaces(context.Background(), ts, ts.Workspaces, tr.Spec.Workspaces, map[string]corev1.Volume{})
	ts = resources.ApplyCredentialsPath(ts, pipeline.CredsDir)
	return ts
}

func (r *run) createPod(ctx context.Context, name string) (*corev1.Pod, error) {
	tr := r.tr
	labels := map[string]string{}
	for k, v := range tr.Labels {
		labels[k] = v
	}
	labels[pipeline.TaskRunLabelKey] = tr.Name
	labels[pipeline.TaskRunUIDLabelKey] = string(tr.UID)
	labels["app.kubernetes.io/managed-by"] = "tekton-pipelines"
	annotations := map[string]string{}
	for k, v := range tr.Annotations {
		if k != "app.kubernetes.io/managed-by" {
			annotations[k] = v
		}
	}
	annotations[tektonpod.ReleaseAnnotation] = tektonRelease
	annotations["tekton.dev/ready"] = "READY"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       tr.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(tr, v1.SchemeGroupVersion.WithKind("TaskRun"))},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: r.sa,
			NodeName:           NodeName,
			RestartPolicy:      corev1.RestartPolicyNever,
		},
	}
	for i, s := range r.ts.Steps {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name:                     tektonpod.StepName(s.Name, i),
			Image:                    s.Image,
			Command:                  s.Command,
			Args:                     s.Args,
			WorkingDir:               s.WorkingDir,
			Env:                      s.Env,
			TerminationMessagePath:   "/tekton/termination",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		})
	}
	created, err := r.e.kube.CoreV1().Pods(tr.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodPending}
	for _, c := range created.Spec.Containers {
		created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:  c.Name,
			Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}},
		})
	}
	return created, nil
}

// prepare materialises volumes and writes the step kubeconfig.
func (r *run) prepare(ctx context.Context) error {
	tr := r.tr
	// Each workspace is a volume Tekton mounts (Shipwright's source
	// workspace: an emptyDir at /workspace/source), so its directory exists
	// before any step runs; `shp build upload` extracts into it.
	for _, w := range r.ts.Workspaces {
		mp := w.MountPath
		if mp == "" {
			mp = path.Join(pipeline.WorkspaceDir, w.Name)
		}
		if rel, ok := strings.CutPrefix(path.Clean(mp), pipeline.WorkspaceDir+"/"); ok {
			if err := os.MkdirAll(filepath.Join(r.dir, "workspace", filepath.FromSlash(rel)), 0o777); err != nil {
				return fmt.Errorf("workspace %q: %w", w.Name, err)
			}
		}
	}
	r.vols = map[string]string{}
	for _, v := range r.ts.Volumes {
		dir := filepath.Join(r.dir, "volumes", v.Name)
		switch {
		case v.EmptyDir != nil:
		case v.Secret != nil:
			s, err := r.e.kube.CoreV1().Secrets(tr.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(v.Secret.Optional, false) {
					break
				}
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if err := writeVolume(dir, s.Data, v.Secret.Items); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			cm, err := r.e.kube.CoreV1().ConfigMaps(tr.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(v.ConfigMap.Optional, false) {
					break
				}
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			data := map[string][]byte{}
			for k, val := range cm.Data {
				data[k] = []byte(val)
			}
			for k, val := range cm.BinaryData {
				data[k] = val
			}
			if err := writeVolume(dir, data, v.ConfigMap.Items); err != nil {
				return err
			}
		default:
			// downwardAPI/projected/… volumes are not materialised: mounts
			// of them (e.g. Shipwright's /etc/passwd) stay unmapped.
			r.logf("volume %q of an unsupported kind is not mounted", v.Name)
			continue
		}
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		r.vols[v.Name] = dir
	}
	if err := r.credsInit(ctx); err != nil {
		return err
	}

	// A token of the TaskRun's service account, bound to the pod, as the
	// kubelet projects it.
	expiry := int64(2 * time.Hour / time.Second)
	if tr.Spec.Timeout != nil && tr.Spec.Timeout.Duration > time.Hour {
		expiry = int64(2 * tr.Spec.Timeout.Duration / time.Second)
	}
	tok, err := r.e.kube.CoreV1().ServiceAccounts(tr.Namespace).CreateToken(ctx, r.sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &expiry,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: r.pod.Name, UID: r.pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token for service account %q: %w", r.sa, err)
	}
	server, ca := r.e.server()
	return writeKubeconfig(filepath.Join(r.dir, "kubeconfig"), server, ca, tok.Status.Token,
		"system:serviceaccount:"+tr.Namespace+":"+r.sa, tr.Namespace)
}

func writeVolume(dir string, data map[string][]byte, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			continue
		}
		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(p, val, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stepPaths maps the container paths a step sees to host directories.
func (r *run) stepPaths(step v1.Step) pathMap {
	m := pathMap{
		{"/workspace", filepath.Join(r.dir, "workspace")},
		{"/tekton/results", filepath.Join(r.dir, "results")},
		{"/tekton/home", filepath.Join(r.dir, "home")},
		{"/tekton/creds", filepath.Join(r.dir, "creds")},
		{"/tekton/steps", filepath.Join(r.dir, "tekton-steps")},
	}
	for _, vm := range step.VolumeMounts {
		if dir, ok := r.vols[vm.Name]; ok {
			m = append(m, [2]string{vm.MountPath, filepath.Join(dir, vm.SubPath)})
		}
	}
	sort.SliceStable(m, func(i, j int) bool { return len(m[i][0]) > len(m[j][0]) })
	return m
}

// pathMap rewrites container path prefixes into host paths.
type pathMap [][2]string

func isPathChar(c byte) bool {
	return c == '/' || c == '.' || c == '_' || c == '-' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// rewrite replaces every occurrence of a mapped path that starts a path
// (start of string or after a non-path character) and ends a path component.
func (m pathMap) rewrite(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		replaced := false
		if s[i] == '/' && (i == 0 || !isPathChar(s[i-1])) {
			for _, kv := range m {
				from := kv[0]
				if strings.HasPrefix(s[i:], from) {
					end := i + len(from)
					if end == len(s) || s[end] == '/' || !isPathChar(s[end]) || strings.HasSuffix(from, "/") {
						b.WriteString(kv[1])
						i = end
						replaced = true
						break
					}
				}
			}
		}
		if !replaced {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// stepEnv resolves a step's environment as the kubelet does (valueFrom,
// envFrom, $(VAR) expansion) and returns it in container terms.
func (r *run) stepEnv(ctx context.Context, step v1.Step) ([]corev1.EnvVar, error) {
	tr := r.tr
	var env []corev1.EnvVar
	for _, ef := range step.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := r.e.kube.CoreV1().ConfigMaps(tr.Namespace).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(ef.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, err
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, err := r.e.kube.CoreV1().Secrets(tr.Namespace).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(ef.SecretRef.Optional, false) {
					continue
				}
				return nil, err
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, corev1.EnvVar{Name: ef.Prefix + k, Value: data[k]})
		}
	}
	values := map[string]string{}
	for _, ev := range env {
		values[ev.Name] = ev.Value
	}
	for _, ev := range step.Env {
		val := ev.Value
		if ev.ValueFrom == nil {
			val = expansion.Expand(val, expansion.MappingFuncFor(values))
		} else {
			var err error
			val, err = r.envFrom(ctx, ev.ValueFrom)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", ev.Name, err)
			}
		}
		values[ev.Name] = val
		env = append(env, corev1.EnvVar{Name: ev.Name, Value: val})
	}
	return env, nil
}

func (r *run) envFrom(ctx context.Context, src *corev1.EnvVarSource) (string, error) {
	tr := r.tr
	switch {
	case src.FieldRef != nil:
		switch p := src.FieldRef.FieldPath; p {
		case "spec.serviceAccountName":
			return r.sa, nil
		case "spec.nodeName":
			return NodeName, nil
		case "status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs":
			return "127.0.0.1", nil
		default:
			return fieldpath.ExtractFieldPathAsString(r.pod, p)
		}
	case src.ConfigMapKeyRef != nil:
		cm, err := r.e.kube.CoreV1().ConfigMaps(tr.Namespace).Get(ctx, src.ConfigMapKeyRef.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := cm.Data[src.ConfigMapKeyRef.Key]; ok {
				return v, nil
			}
			err = fmt.Errorf("key %q not found in ConfigMap %q", src.ConfigMapKeyRef.Key, src.ConfigMapKeyRef.Name)
		}
		if ptr.Deref(src.ConfigMapKeyRef.Optional, false) {
			return "", nil
		}
		return "", err
	case src.SecretKeyRef != nil:
		s, err := r.e.kube.CoreV1().Secrets(tr.Namespace).Get(ctx, src.SecretKeyRef.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := s.Data[src.SecretKeyRef.Key]; ok {
				return string(v), nil
			}
			err = fmt.Errorf("key %q not found in Secret %q", src.SecretKeyRef.Key, src.SecretKeyRef.Name)
		}
		if ptr.Deref(src.SecretKeyRef.Optional, false) {
			return "", nil
		}
		return "", err
	}
	return "", nil
}

func (r *run) stepDir(i int) string {
	return filepath.Join(r.dir, "steps", r.ts.Steps[i].Name)
}

// runStep runs step i to its end. ok=false means the run is over (the
// TaskRun failed by cancellation, timeout or an error, or the sandbox stops).
func (r *run) runStep(ctx context.Context, i int, step v1.Step, w *waiter) (exitCode int32, ok bool) {
	tr := r.tr
	container := r.pod.Spec.Containers[i].Name
	bin, known := r.e.binaryFor(step.Image)
	if step.Script != "" {
		// Tekton runs a script as an executable file; here it runs on the
		// host, whatever the image.
		bin, known = "", true
	}
	if !known {
		msg := fmt.Sprintf("the sandbox maps no binary to image %q", step.Image)
		r.setWaiting(i, "ErrImagePull", msg)
		r.fail(ctx, v1.TaskRunReasonImagePullFailed, fmt.Sprintf("the step %q in TaskRun %q failed to pull the image %q. The pod errored with the message: %q.", step.Name, tr.Name, step.Image, msg))
		return 0, false
	}
	env, err := r.stepEnv(ctx, step)
	if err != nil {
		r.setWaiting(i, string(v1.TaskRunReasonCreateContainerConfigError), err.Error())
		r.fail(ctx, v1.TaskRunReasonCreateContainerConfigError, fmt.Sprintf("Failed to create pod due to config error: %v", err))
		return 0, false
	}
	paths := r.stepPaths(step)
	entrypoint := "" // command[0] of a step whose image maps to bin
	values := map[string]string{}
	for _, ev := range env {
		values[ev.Name] = ev.Value
	}
	expand := func(s string) string { return paths.rewrite(expansion.Expand(s, expansion.MappingFuncFor(values))) }
	var argv []string
	for _, c := range step.Command {
		argv = append(argv, expand(c))
	}
	for _, a := range step.Args {
		argv = append(argv, expand(a))
	}
	if step.Script != "" {
		script := step.Script
		if !strings.HasPrefix(script, "#!") {
			script = "#!/bin/sh\nset -e\n" + script // Tekton's default shebang
		}
		bin = filepath.Join(r.dir, "scripts", fmt.Sprintf("script-%d", i))
		err := os.MkdirAll(filepath.Dir(bin), 0o755)
		if err == nil {
			err = os.WriteFile(bin, []byte(paths.rewrite(script)), 0o755)
		}
		if err != nil {
			r.fail(ctx, v1.TaskRunReasonPodCreationFailed, err.Error())
			return 0, false
		}
	} else if bin == "" { // host image: command[0] from PATH
		if len(argv) == 0 {
			bin = "true"
		} else {
			bin, argv = argv[0], argv[1:]
		}
	} else if len(step.Command) > 0 {
		entrypoint = argv[0]
		argv = argv[1:]
	}
	procEnv := append(minimalEnv(), "PATH="+r.e.path, "HOME="+filepath.Join(r.dir, "home"), "KUBECONFIG="+filepath.Join(r.dir, "kubeconfig"))
	if r.e.gitConfig != "" {
		procEnv = append(procEnv, "GIT_CONFIG_SYSTEM="+r.e.gitConfig)
	}
	for _, ev := range env {
		procEnv = append(procEnv, ev.Name+"="+paths.rewrite(ev.Value))
	}
	workDir := filepath.Join(r.dir, "workspace")
	if step.WorkingDir != "" {
		workDir = paths.rewrite(step.WorkingDir)
		_ = os.MkdirAll(workDir, 0o777)
	}
	sdir := r.stepDir(i)
	if err := os.MkdirAll(sdir, 0o777); err != nil {
		r.fail(ctx, v1.TaskRunReasonPodCreationFailed, err.Error())
		return 0, false
	}
	logFile, err := os.OpenFile(filepath.Join(r.dir, "logs", step.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.fail(ctx, v1.TaskRunReasonPodCreationFailed, err.Error())
		return 0, false
	}
	defer logFile.Close()
	// The output goes to the plain log and the kubelet's timestamped one.
	output, err := newContainerOutput(logFile, r.containerLogPath(i))
	if err != nil {
		r.fail(ctx, v1.TaskRunReasonPodCreationFailed, err.Error())
		return 0, false
	}
	defer output.close()

	cmd := exec.Command(bin, argv...)
	cmd.Env = procEnv
	cmd.Dir = workDir
	cmd.Stdout = output.W
	cmd.Stderr = output.W
	record := kubeletContainerRecord{State: "running", WorkingDir: workDir, Paths: paths}
	if entrypoint != "" {
		record.ImageCommands = map[string]string{entrypoint: bin}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := metav1.Now()
	startErr := cmd.Start()
	output.start()
	exited := make(chan error, 1)
	if startErr == nil {
		r.logf("step %s: running %s %q (pid %d)", step.Name, bin, argv, cmd.Process.Pid)
		go func() { exited <- cmd.Wait() }()
		record.PID, record.StartedAt = cmd.Process.Pid, started.Time
		if err := r.writeContainerRecord(i, record); err != nil {
			r.logf("step %s: %v", step.Name, err)
		}
	} else {
		fmt.Fprintf(output, "Error executing command: %v\n", startErr)
		exited <- startErr
	}
	r.setRunning(i, started, bin)
	r.publish(ctx)

	signal := func(sig syscall.Signal) {
		if startErr == nil {
			_ = syscall.Kill(-cmd.Process.Pid, sig)
		}
	}
	var graceC, cancelC <-chan time.Time
	terminating, cancelledByEntrypoint := false, false
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-exited:
			break loop
		case latest := <-r.trUpdates:
			r.tr = latest
			if !r.done && latest.IsCancelled() {
				r.fail(ctx, v1.TaskRunReasonCancelled, fmt.Sprintf("TaskRun %q was cancelled. %s", latest.Name, latest.Spec.StatusMessage))
			}
		case <-w.timeoutC:
			w.timeoutC = nil
			if !r.done {
				r.fail(ctx, v1.TaskRunReasonTimedOut, fmt.Sprintf("TaskRun %q failed to finish within %q", tr.Name, w.timeout.String()))
			}
		case p := <-r.podUpdates:
			// The kubelet's part: graceful deletion, and the
			// entrypoint's cancel annotation (keep-pod-on-cancel).
			if p.DeletionTimestamp != nil && !terminating {
				terminating = true
				grace := defaultGracePeriod
				if p.DeletionGracePeriodSeconds != nil {
					grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
				}
				r.logf("step %s: pod deleted, SIGTERM (grace %s)", step.Name, grace)
				signal(syscall.SIGTERM)
				graceC = time.After(grace)
			}
			if p.Annotations[cancelAnnotation] == cancelAnnotationValue && !cancelledByEntrypoint {
				cancelledByEntrypoint = true
				d := entrypointCancelDelay()
				r.logf("step %s: cancel annotation; the entrypoint kills the step in %s", step.Name, d.Round(time.Millisecond))
				cancelC = time.After(d)
			}
		case <-cancelC:
			cancelC = nil
			r.logf("step %s: cancel file seen by the entrypoint, SIGKILL", step.Name)
			signal(syscall.SIGKILL)
		case <-r.podGone:
			signal(syscall.SIGKILL)
		case <-graceC:
			r.logf("step %s: grace period over, SIGKILL", step.Name)
			signal(syscall.SIGKILL)
		case <-ctx.Done():
			signal(syscall.SIGKILL)
			<-exited
			return 0, false
		}
	}
	// Tekton's reconciler acts on a cancel as soon as spec.status changes,
	// before the pod's end: a step that watches its own TaskRun can exit on
	// the cancel before this executor's watch has delivered it, and that
	// exit must not make the TaskRun StepFailed.
	if !r.done {
		if cur, err := r.e.tekton.TektonV1().TaskRuns(r.tr.Namespace).Get(ctx, r.tr.Name, metav1.GetOptions{}); err == nil && cur.IsCancelled() {
			r.fail(ctx, v1.TaskRunReasonCancelled, fmt.Sprintf("TaskRun %q was cancelled. %s", cur.Name, cur.Spec.StatusMessage))
		}
	}
	// Take the rest of the process group down with the main process, as a
	// container's end does.
	signal(syscall.SIGKILL)
	output.finish(5 * time.Second)
	finished := metav1.Now()
	state := "exit status 1"
	exitCode = 1
	if startErr == nil && cmd.ProcessState != nil {
		state = cmd.ProcessState.String()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			exitCode = 128 + int32(ws.Signal())
		} else {
			exitCode = int32(cmd.ProcessState.ExitCode())
		}
	}
	_ = os.WriteFile(filepath.Join(sdir, "exit"), []byte(state+"\n"), 0o644)
	r.logf("step %s: %s (wait: %v)", step.Name, state, waitErr)

	// The entrypoint's termination message: declared results read from
	// disk (the 4096-byte rule applies), then StartedAt.
	msgPath := filepath.Join(sdir, "termination")
	_ = os.Remove(msgPath)
	var out []result.RunResult
	for _, res := range r.ts.Results {
		b, err := os.ReadFile(filepath.Join(r.dir, "results", res.Name))
		if err != nil {
			continue
		}
		out = append(out, result.RunResult{Key: res.Name, Value: string(b), ResultType: result.TaskRunResultType})
	}
	if cancelledByEntrypoint {
		exitCode = int32(syscall.SIGKILL) // the entrypoint exits 9: "Step was cancelled"
		fmt.Fprintln(output, "Step was cancelled")
		_ = termination.WriteMessage(msgPath, []result.RunResult{{Key: "Reason", Value: "Cancelled", ResultType: result.InternalTektonResultType}})
	} else if len(out) > 0 {
		if err := termination.WriteMessage(msgPath, out); err != nil {
			fmt.Fprintln(output, err.Error())
			exitCode = 1
		}
	}
	_ = termination.WriteMessage(msgPath, []result.RunResult{{Key: "StartedAt", Value: started.Format(entrypointTimeFormat), ResultType: result.InternalTektonResultType}})
	msg, _ := os.ReadFile(msgPath)
	reason := "Completed"
	if exitCode != 0 {
		reason = "Error"
	}
	r.pod.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    exitCode,
		Reason:      reason,
		Message:     string(msg),
		StartedAt:   started,
		FinishedAt:  finished,
		ContainerID: fmt.Sprintf("sandbox://%s/%s", r.pod.UID, container),
	}}
	r.pod.Status.ContainerStatuses[i].Ready = false
	r.pod.Status.ContainerStatuses[i].Started = ptr.To(false)
	// The log is complete: a follow of it may end.
	output.close()
	record.State, record.PID, record.FinishedAt = "terminated", 0, finished.Time
	if err := r.writeContainerRecord(i, record); err != nil {
		r.logf("step %s: %v", step.Name, err)
	}
	if r.done || terminating || cancelledByEntrypoint {
		r.pod.Status.Phase = corev1.PodFailed
		r.publishPod(ctx)
		return exitCode, false
	}
	r.publish(ctx)
	return exitCode, true
}

// skipStep records a step that never ran because an earlier one failed, as
// Tekton's entrypoint does (exit 1, termination reason Skipped).
func (r *run) skipStep(i int) {
	sdir := r.stepDir(i)
	_ = os.MkdirAll(sdir, 0o777)
	msgPath := filepath.Join(sdir, "termination")
	now := metav1.Now()
	_ = termination.WriteMessage(msgPath, []result.RunResult{
		{Key: "StartedAt", Value: now.Format(entrypointTimeFormat), ResultType: result.InternalTektonResultType},
		{Key: "Reason", Value: "Skipped", ResultType: result.InternalTektonResultType},
	})
	msg, _ := os.ReadFile(msgPath)
	r.pod.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 1, Reason: "Error", Message: string(msg), StartedAt: now, FinishedAt: now,
	}}
	_ = r.writeContainerRecord(i, kubeletContainerRecord{State: "terminated", StartedAt: now.Time, FinishedAt: now.Time})
}

func (r *run) setWaiting(i int, reason, message string) {
	if r.pod == nil || i >= len(r.pod.Status.ContainerStatuses) {
		return
	}
	r.pod.Status.ContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	r.publishPod(context.Background())
}

func (r *run) setRunning(i int, started metav1.Time, bin string) {
	cs := &r.pod.Status.ContainerStatuses[i]
	cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	cs.Ready = true
	cs.Started = ptr.To(true)
	cs.ImageID = "sandbox://" + bin
	cs.ContainerID = fmt.Sprintf("sandbox://%s/%s", r.pod.UID, cs.Name)
	// Steps after this one wait, as the entrypoint makes them.
	for j := i + 1; j < len(r.pod.Status.ContainerStatuses); j++ {
		r.pod.Status.ContainerStatuses[j].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	}
}

// computeStatus derives the TaskRun status from the pod with Tekton's own code.
func (r *run) computeStatus(ctx context.Context) v1.TaskRunStatus {
	tr := r.tr.DeepCopy()
	tr.Status = *r.base.DeepCopy()
	st, err := tektonpod.MakeTaskRunStatus(ctx, r.e.log, *tr, r.pod.DeepCopy(), r.e.kube, r.spec)
	if err != nil {
		r.logf("computing status: %v", err)
	}
	return st
}

// publish pushes the pod status and, unless the TaskRun is done, the
// TaskRun status derived from it.
func (r *run) publish(ctx context.Context) {
	r.publishPod(ctx)
	if r.done {
		return
	}
	st := r.computeStatus(ctx)
	if c := st.GetCondition("Succeeded"); c != nil && c.Status != corev1.ConditionUnknown {
		r.done = true
		if st.CompletionTime == nil {
			st.CompletionTime = ptr.To(metav1.Now())
		}
	}
	r.publishTaskRun(ctx, st)
}

func (r *run) publishPod(ctx context.Context) {
	if r.pod == nil {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := r.e.kube.CoreV1().Pods(r.pod.Namespace).Get(ctx, r.pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != r.podUID {
			return nil
		}
		cur.Status = *r.pod.Status.DeepCopy()
		_, err = r.e.kube.CoreV1().Pods(r.pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		r.logf("updating pod status: %v", err)
	}
}

func (r *run) publishTaskRun(ctx context.Context, st v1.TaskRunStatus) {
	r.base = st
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := r.e.tekton.TektonV1().TaskRuns(r.tr.Namespace).Get(ctx, r.tr.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = *st.DeepCopy()
		_, err = r.e.tekton.TektonV1().TaskRuns(r.tr.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil {
		r.logf("updating status: %v", err)
	}
}

// entrypointCancelDelay is how long after the pod's cancel annotation the
// entrypoint kills the step (keep-pod-on-cancel). Tekton's entrypoint does
// not watch the API: the kubelet writes the annotation into the downward-API
// file /tekton/downward/cancel, and the entrypoint polls that file once a
// second (cmd/entrypoint: defaultWaitPollingInterval = time.Second). The
// sandbox has no kubelet volume manager; it takes the file as written at
// once plus the kubelet's propagation, modelled as 1 s, then the entrypoint
// sees it at a random point of its 1 s poll.
func entrypointCancelDelay() time.Duration {
	return time.Second + time.Duration(rand.Int64N(int64(time.Second)))
}

// fail is Tekton's failTaskRun: mark the TaskRun failed and set its
// completionTime first, mark running/waiting steps terminated, publish,
// then stop the pod — deleted (grace 30 s: SIGTERM, then SIGKILL) by
// default, or annotated for the entrypoint to kill the step at once when
// keep-pod-on-cancel is on and the reason is a cancel or a timeout.
func (r *run) fail(ctx context.Context, reason v1.TaskRunReason, message string) {
	st := *r.base.DeepCopy()
	if r.pod != nil {
		st = r.computeStatus(ctx)
	}
	st.MarkResourceFailed(reason, errors.New(message))
	st.CompletionTime = ptr.To(metav1.Now())
	r.done = true
	r.logf("failing: %s: %s", reason, message)
	if r.pod == nil {
		r.publishTaskRun(ctx, st)
		return
	}
	terminateSteps(&st, reason, r.pod.Name, r.tr.CreationTimestamp)
	r.publishTaskRun(ctx, st)

	var err error
	if (reason == v1.TaskRunReasonCancelled || reason == v1.TaskRunReasonTimedOut) && r.e.keepPodOnCancel(ctx) {
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, cancelAnnotation, cancelAnnotationValue))
		_, err = r.e.kube.CoreV1().Pods(r.pod.Namespace).Patch(ctx, r.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	} else {
		err = r.e.kube.CoreV1().Pods(r.pod.Namespace).Delete(ctx, r.pod.Name, metav1.DeleteOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		r.logf("stopping pod: %v", err)
	}
}

// terminateSteps mirrors Tekton's terminateStepsInPod.
func terminateSteps(st *v1.TaskRunStatus, reason v1.TaskRunReason, podName string, created metav1.Time) {
	for i, step := range st.Steps {
		var startedAt metav1.Time
		switch {
		case step.Running != nil:
			startedAt = step.Running.StartedAt
		case step.Waiting != nil:
			startedAt = created
		default:
			continue
		}
		step.Terminated = &corev1.ContainerStateTerminated{
			ExitCode:   1,
			StartedAt:  startedAt,
			FinishedAt: *st.CompletionTime,
			Reason:     reason.String(),
			Message:    fmt.Sprintf("Step %s terminated as pod %s is terminated", step.Name, podName),
		}
		step.TerminationReason = reason.String()
		step.Running = nil
		step.Waiting = nil
		st.Steps[i] = step
	}
}

func zapCoreTo(w io.Writer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(w), zap.InfoLevel)
}
