package driver

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocbuild/ocbuild/pkg/buildapi/buildapifake"
	buildv1 "github.com/openshift/api/build/v1"
	fakebuild "github.com/openshift/client-go/build/clientset/versioned/fake"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
)

const ns = "team"

var (
	buildsGVR = schema.GroupVersionResource{Group: "build.openshift.io", Version: "v1", Resource: "builds"}
	bcsGVR    = schema.GroupVersionResource{Group: "build.openshift.io", Version: "v1", Resource: "buildconfigs"}
)

// cluster is a small stand-in for OpenShift's build service: the typed API
// comes from the fake clientset (with instantiate and the controller's
// cancel handling added), the REST subresources (instantiatebinary, log) from
// an httptest server.
type cluster struct {
	t      *testing.T
	client *fakebuild.Clientset
	srv    *httptest.Server
	rest   rest.Interface

	mu       sync.Mutex
	logs     map[string][]string // build → log lines, already timestamped
	cuts     map[string][]int    // build → line counts after which successive streams are cut
	uploads  map[string]received // build → what instantiatebinary received
	logCalls map[string][]url.Values
	// outcome decides how a build ends once it runs; nil leaves it running.
	outcome func(b *buildv1.Build) *buildv1.BuildStatus
	// beforeGenerate runs inside instantiate, before the build is generated.
	beforeGenerate func(bc *buildv1.BuildConfig)
	// stayNew keeps builds in New with this reason.
	stayNew  buildv1.StatusReason
	requests []*buildv1.BuildRequest
	// holdStart, when set, keeps binary builds New until it is closed, as
	// a queued build would; like OpenShift's server, instantiatebinary
	// waits for Running whether or not its client is still there.
	holdStart chan struct{}
	// loseBinaryAnswers is how many instantiatebinary requests are carried
	// out (build started, source taken) and then answered 500.
	loseBinaryAnswers int
	// loseInstantiate, when set, runs after instantiate created the build;
	// a non-nil error is answered instead of the build.
	loseInstantiate func() error
	// watched is closed per build once the driver watches it: the fake
	// tracker does not replay missed events, so the phase engine waits.
	watched map[string]chan struct{}
	genMu   sync.Mutex
	ctx     context.Context
}

func (c *cluster) watchedChan(name string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.watched[name]
	if !ok {
		ch = make(chan struct{})
		c.watched[name] = ch
	}
	return ch
}

type received struct {
	query url.Values
	names []string
}

func newCluster(t *testing.T, objects ...runtime.Object) *cluster {
	t.Helper()
	c := &cluster{t: t, client: fakebuild.NewSimpleClientset(objects...), logs: map[string][]string{}, cuts: map[string][]int{},
		uploads: map[string]received{}, logCalls: map[string][]url.Values{}, watched: map[string]chan struct{}{}}
	c.client.PrependWatchReactor("builds", func(a clienttesting.Action) (bool, watch.Interface, error) {
		wa := a.(clienttesting.WatchAction)
		name, ok := wa.GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return false, nil, nil
		}
		w, err := c.tracker().Watch(buildsGVR, ns)
		if err != nil {
			return true, nil, err
		}
		ch := c.watchedChan(name)
		select {
		case <-ch:
		default:
			close(ch)
		}
		return true, c.replaying(w, name), nil
	})
	c.client.PrependReactor("create", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "instantiate" {
			return false, nil, nil
		}
		req := a.(clienttesting.CreateAction).GetObject().(*buildv1.BuildRequest)
		c.mu.Lock()
		c.requests = append(c.requests, req.DeepCopy())
		c.mu.Unlock()
		b, err := c.generate(req.Name, req, false)
		if err != nil {
			return true, nil, err
		}
		go c.run(b.Name)
		if c.loseInstantiate != nil {
			if err := c.loseInstantiate(); err != nil {
				return true, nil, err
			}
		}
		return true, b, nil
	})
	// OpenShift never lets a client's update lower status.lastVersion
	// (the fake tracker would store a stale copy and reuse build names).
	c.client.PrependReactor("update", "buildconfigs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "" {
			return false, nil, nil
		}
		bc := a.(clienttesting.UpdateAction).GetObject().(*buildv1.BuildConfig).DeepCopy()
		c.genMu.Lock()
		defer c.genMu.Unlock()
		if cur, err := c.tracker().Get(bcsGVR, ns, bc.Name); err == nil {
			if lv := cur.(*buildv1.BuildConfig).Status.LastVersion; lv > bc.Status.LastVersion {
				bc.Status.LastVersion = lv
			}
		}
		if err := c.tracker().Update(bcsGVR, bc, ns); err != nil {
			return true, nil, err
		}
		return true, bc, nil
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs/{name}/instantiatebinary", c.instantiateBinary)
	mux.HandleFunc("GET /apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}/log", c.log)
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	cfg := &rest.Config{Host: c.srv.URL, ContentConfig: rest.ContentConfig{
		GroupVersion: &buildv1.GroupVersion, NegotiatedSerializer: buildscheme.Codecs.WithoutConversion()}, APIPath: "/apis"}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.rest = rc
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.ctx = ctx
	go c.controller(ctx)
	return c
}

// replaying starts a watch with the build's current state: the fake
// tracker's watch has no resourceVersion, so a change between the
// watcher's list and its watch would otherwise be lost (a real server
// replays from the list's resourceVersion).
func (c *cluster) replaying(w watch.Interface, name string) watch.Interface {
	events := make(chan watch.Event, 16)
	proxy := watch.NewProxyWatcher(events)
	if b := c.get(name); b != nil {
		events <- watch.Event{Type: watch.Modified, Object: b}
	}
	go func() {
		defer close(events)
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.ResultChan():
				if !ok {
					return
				}
				select {
				case events <- e:
				case <-proxy.StopChan():
					return
				}
			case <-proxy.StopChan():
				return
			}
		}
	}()
	return proxy
}

func (c *cluster) clients() Clients {
	return Clients{Builds: buildapifake.Adapt(c.client.BuildV1(), nil), REST: c.rest}
}

func (c *cluster) tracker() clienttesting.ObjectTracker { return c.client.Tracker() }

// generate does what OpenShift's build generator does: bump lastVersion,
// copy the BuildConfig's spec into build <bc>-<n> in phase New.
func (c *cluster) generate(bcName string, req *buildv1.BuildRequest, binary bool) (*buildv1.Build, error) {
	// OpenShift bumps lastVersion with conflict retries; serialise instead.
	c.genMu.Lock()
	defer c.genMu.Unlock()
	obj, err := c.tracker().Get(bcsGVR, ns, bcName)
	if err != nil {
		return nil, err
	}
	bc := obj.(*buildv1.BuildConfig).DeepCopy()
	if c.beforeGenerate != nil {
		c.beforeGenerate(bc)
	}
	bc.Status.LastVersion++
	if err := c.tracker().Update(bcsGVR, bc, ns); err != nil {
		return nil, err
	}
	b := &buildv1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", bc.Name, bc.Status.LastVersion), Namespace: ns,
			Labels:      map[string]string{"buildconfig": bc.Name, "openshift.io/build-config.name": bc.Name},
			Annotations: map[string]string{"openshift.io/build.number": fmt.Sprint(bc.Status.LastVersion)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "build.openshift.io/v1", Kind: "BuildConfig", Name: bc.Name,
				UID: bc.UID, Controller: ptr(true)}}},
		Spec:   buildv1.BuildSpec{CommonSpec: *bc.Spec.CommonSpec.DeepCopy()},
		Status: buildv1.BuildStatus{Phase: buildv1.BuildPhaseNew, Reason: c.stayNew},
	}
	// The fake tracker keeps no resourceVersions; the driver watches from
	// the one it holds, as the harness's watches replay the current state.
	b.ResourceVersion = "1"
	if req != nil {
		for k, v := range req.Labels {
			if _, system := b.Labels[k]; !system {
				b.Labels[k] = v
			}
		}
		for k, v := range req.Annotations {
			b.Annotations[k] = v
		}
		if req.Revision != nil {
			b.Spec.Revision = req.Revision.DeepCopy()
		}
		if len(req.Env) > 0 {
			b.Spec.Strategy.DockerStrategy.Env = append(b.Spec.Strategy.DockerStrategy.Env, req.Env...)
		}
	}
	if binary {
		b.Spec.Source = buildv1.BuildSource{Type: buildv1.BuildSourceBinary, Binary: &buildv1.BinaryBuildSource{}}
	}
	if err := c.tracker().Create(buildsGVR, b, ns); err != nil {
		return nil, err
	}
	return b, nil
}

func ptr[T any](v T) *T { return &v }

func nextVersion(rv string) string {
	n, _ := strconv.Atoi(rv)
	return strconv.Itoa(n + 1)
}

func (c *cluster) get(name string) *buildv1.Build {
	obj, err := c.tracker().Get(buildsGVR, ns, name)
	if err != nil {
		return nil
	}
	return obj.(*buildv1.Build)
}

// update applies fn to the build unless it is already terminal (the
// controller never moves a terminal build).
func (c *cluster) update(name string, fn func(b *buildv1.Build)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.get(name)
	if b == nil || terminal(b.Status.Phase) {
		return false
	}
	b = b.DeepCopy()
	fn(b)
	b.ResourceVersion = nextVersion(b.ResourceVersion)
	if err := c.tracker().Update(buildsGVR, b, ns); err != nil {
		c.t.Errorf("update build %s: %v", name, err)
		return false
	}
	return true
}

func terminal(p buildv1.BuildPhase) bool {
	switch p {
	case buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
		return true
	}
	return false
}

// run moves a build to Running and, if an outcome is set, to its end.
func (c *cluster) run(name string) {
	if c.stayNew != "" {
		return
	}
	select {
	case <-c.watchedChan(name):
	case <-c.ctx.Done():
		return
	}
	// OpenShift's controller cancels a flagged build before it runs it.
	if b := c.get(name); b == nil || b.Status.Cancelled {
		return
	}
	c.update(name, func(b *buildv1.Build) { b.Status.Phase = buildv1.BuildPhaseRunning })
	c.mu.Lock()
	outcome := c.outcome
	c.mu.Unlock()
	if outcome == nil {
		return
	}
	c.update(name, func(b *buildv1.Build) {
		st := outcome(b)
		st.Cancelled = b.Status.Cancelled
		b.Status = *st
	})
}

// controller cancels builds flagged status.cancelled, as OpenShift's does.
func (c *cluster) controller(ctx context.Context) {
	w, err := c.client.BuildV1().Builds(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Errorf("watch: %v", err)
		return
	}
	defer w.Stop()
	for e := range w.ResultChan() {
		if e.Type != watch.Modified && e.Type != watch.Added {
			continue
		}
		b := e.Object.(*buildv1.Build)
		if b.Status.Cancelled && !terminal(b.Status.Phase) {
			c.update(b.Name, func(b *buildv1.Build) {
				b.Status.Phase, b.Status.Reason = buildv1.BuildPhaseCancelled, "CancelledBuild"
				b.Status.Message = "The build was cancelled by the user."
			})
		}
	}
}

func (c *cluster) instantiateBinary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b, err := c.generate(name, nil, true)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if q := r.URL.Query(); q.Get("revision.commit") != "" {
		c.update(b.Name, func(b *buildv1.Build) {
			b.Spec.Revision = &buildv1.SourceRevision{Type: buildv1.BuildSourceGit, Git: &buildv1.GitSourceRevision{
				Commit: q.Get("revision.commit"), Message: q.Get("revision.message"),
				Author: buildv1.SourceControlUser{Name: q.Get("revision.authorName"), Email: q.Get("revision.authorEmail")}}}
		})
	}
	if c.holdStart != nil {
		// Deliberately not r.Context(): the real server does not notice a
		// client that has gone.
		select {
		case <-c.holdStart:
		case <-c.cancelled(b.Name):
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was cancelled: No logs are available.", b.Name)))
			return
		}
	}
	c.update(b.Name, func(b *buildv1.Build) { b.Status.Phase = buildv1.BuildPhaseRunning })
	names, err := readTarGz(r.Body)
	if err != nil {
		// What arrived is all the build gets; it runs on (nobody cancels).
		go c.run(b.Name)
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	c.mu.Lock()
	c.uploads[b.Name] = received{query: r.URL.Query(), names: names}
	lose := c.loseBinaryAnswers > 0
	if lose {
		c.loseBinaryAnswers--
	}
	c.mu.Unlock()
	if lose {
		// The build stays Running (a long build): only a cancel ends it.
		writeStatus(w, apierrors.NewInternalError(errors.New("an error on the server (\"unknown\") has prevented the request from succeeding")))
		return
	}
	started := c.get(b.Name)
	go c.run(b.Name)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(started)
}

// cancelled is closed once the build is terminal (the controller moved it
// to Cancelled, or it ended otherwise).
func (c *cluster) cancelled(name string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		w, err := c.client.BuildV1().Builds(ns).Watch(c.ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		defer w.Stop()
		if b := c.get(name); b == nil || terminal(b.Status.Phase) {
			return
		}
		for e := range w.ResultChan() {
			if b, ok := e.Object.(*buildv1.Build); ok && b.Name == name && terminal(b.Status.Phase) {
				return
			}
		}
	}()
	return ch
}

func readTarGz(r io.Reader) ([]string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names = append(names, h.Name)
	}
}

func writeStatus(w http.ResponseWriter, err error) {
	var s *apierrors.StatusError
	if !errors.As(err, &s) {
		s = apierrors.NewInternalError(err)
	}
	st := s.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

// setLog stores a build's log lines, each stamped one millisecond apart
// (several share a timestamp when same is set, to exercise resume).
func (c *cluster) setLog(build string, lines []string, sameEvery int) {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var out []string
	ts := base
	for i, l := range lines {
		if sameEvery == 0 || i%sameEvery == 0 {
			ts = ts.Add(time.Millisecond * 300)
		}
		out = append(out, ts.Format(time.RFC3339Nano)+" "+l+"\n")
	}
	c.mu.Lock()
	c.logs[build] = out
	c.mu.Unlock()
}

// log serves builds/<b>/log like OpenShift: 400 for Cancelled/Error, lines
// from sinceTime on; a configured cut ends the stream early without error.
func (c *cluster) log(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	c.mu.Lock()
	c.logCalls[name] = append(c.logCalls[name], q)
	lines := c.logs[name]
	cut := -1
	if cs := c.cuts[name]; len(cs) > 0 {
		cut, c.cuts[name] = cs[0], cs[1:]
	}
	c.mu.Unlock()
	b := c.get(name)
	if b == nil {
		writeStatus(w, apierrors.NewNotFound(buildv1.Resource("builds"), name))
		return
	}
	switch b.Status.Phase {
	case buildv1.BuildPhaseCancelled:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s was cancelled. No logs are available.", name)))
		return
	case buildv1.BuildPhaseError:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("build %s is in an error state. No logs are available.", name)))
		return
	}
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		since, _ = time.Parse(time.RFC3339, s)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	n := 0
	for _, l := range lines {
		ts, _ := time.Parse(time.RFC3339Nano, strings.SplitN(l, " ", 2)[0])
		if ts.Before(since) {
			continue
		}
		if cut >= 0 && n == cut {
			// A cut mid-line, as a dropped connection would leave it.
			_, _ = io.WriteString(w, l[:len(l)/2])
			return
		}
		text := l
		if q.Get("timestamps") != "true" {
			text = strings.SplitN(l, " ", 2)[1]
		}
		_, _ = io.WriteString(w, text)
		n++
	}
	if q.Get("follow") == "true" {
		// Follow ends when the build does.
		ctx := r.Context()
		wt, err := c.client.BuildV1().Builds(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		defer wt.Stop()
		if b := c.get(name); b != nil && terminal(b.Status.Phase) {
			return
		}
		for e := range wt.ResultChan() {
			if b, ok := e.Object.(*buildv1.Build); ok && b.Name == name && terminal(b.Status.Phase) {
				return
			}
		}
	}
}

func complete(digest string) func(b *buildv1.Build) *buildv1.BuildStatus {
	return func(b *buildv1.Build) *buildv1.BuildStatus {
		return &buildv1.BuildStatus{Phase: buildv1.BuildPhaseComplete, OutputDockerImageReference: b.Spec.Output.To.Name,
			Output: buildv1.BuildStatusOutput{To: &buildv1.BuildStatusOutputTo{ImageDigest: digest}}}
	}
}

func env(kv ...string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, corev1.EnvVar{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
