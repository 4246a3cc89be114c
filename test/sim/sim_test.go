package sim_test

// TestSimulatorInSandbox starts the real sandbox with the simulator as its
// front door and talks to it as a step would: through the front door, with a
// service account token. It needs the sandbox's binaries (minutes on a cold
// build cache), so it runs only with OCBUILD_SIM_SANDBOX=1; the e2e suite
// covers the same ground through Shipwright.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

const ns = "simtest"

// stepRules is the minimal Role of reference §9.1.
var stepRules = []rbacv1.PolicyRule{
	{APIGroups: []string{sim.Group}, Resources: []string{"buildconfigs"}, Verbs: []string{"get", "create", "update", "patch", "delete"}},
	{APIGroups: []string{sim.Group}, Resources: []string{"buildconfigs/instantiate", "buildconfigs/instantiatebinary"}, Verbs: []string{"create"}},
	{APIGroups: []string{sim.Group}, Resources: []string{"builds"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{sim.Group}, Resources: []string{"builds/log"}, Verbs: []string{"get"}},
}

func TestSimulatorInSandbox(t *testing.T) {
	if os.Getenv("OCBUILD_SIM_SANDBOX") != "1" {
		t.Skip("set OCBUILD_SIM_SANDBOX=1 to run the simulator in the sandbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	s := sim.New(sim.Options{InstantiateBinaryTimeout: time.Minute, Out: testWriter{t}})
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: t.TempDir(), FrontDoor: s.FrontDoor(), Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	if err := sb.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	step := clientFor(t, ctx, sb, "step", true)
	nobody := clientFor(t, ctx, sb, "nobody", false)
	bcs := step.BuildV1().BuildConfigs(ns)
	builds := step.BuildV1().Builds(ns)
	out := sb.Registry + "/" + ns + "/app:latest"

	// Validation through the webhook, without kube-apiserver's prefix.
	bad := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
		Source: buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: sb.GitRepoURL("hello")}},
	}}}
	_, err = bcs.Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.HasPrefix(err.Error(), `BuildConfig.build.openshift.io "bad" is invalid: spec.strategy: Invalid value: `) {
		t.Errorf("invalid BuildConfig: %v", err)
	}

	// Defaults.
	bc := &buildv1.BuildConfig{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: buildv1.BuildConfigSpec{CommonSpec: buildv1.CommonSpec{
		Source:   buildv1.BuildSource{Git: &buildv1.GitBuildSource{URI: sb.GitRepoURL("hello"), Ref: "main"}},
		Strategy: buildv1.BuildStrategy{DockerStrategy: &buildv1.DockerBuildStrategy{}},
		Output:   buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: out}},
	}}}
	got, err := bcs.Create(ctx, bc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.RunPolicy != "Serial" || *got.Spec.SuccessfulBuildsHistoryLimit != 5 || got.Spec.Source.Type != "Git" || got.Spec.Strategy.Type != "Docker" {
		t.Errorf("defaults: %+v", got.Spec)
	}

	// Source-secret injection lists secrets as the caller: step may not
	// (the 403 is ignored, app got none), lister may.
	if _, err := sb.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-creds",
		Annotations: map[string]string{buildv1.BuildSourceSecretMatchURIAnnotationPrefix + "hello": "*://*/hello.git"}},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "u", "password": "p"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Source.SourceSecret != nil {
		t.Errorf("a caller without list secrets got source secret %+v", got.Spec.Source.SourceSecret)
	}
	lister := clientFor(t, ctx, sb, "lister", true)
	if _, err := sb.Kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "list-secrets"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "list-secrets"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "list-secrets"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "lister", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	injected := bc.DeepCopy()
	injected.Name = "injected"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		// RBAC caches: retry until the binding is seen.
		_ = lister.BuildV1().BuildConfigs(ns).Delete(ctx, injected.Name, metav1.DeleteOptions{})
		x, err := lister.BuildV1().BuildConfigs(ns).Create(ctx, injected, metav1.CreateOptions{})
		return err == nil && x.Spec.Source.SourceSecret != nil && x.Spec.Source.SourceSecret.Name == "git-creds", nil
	})
	if err != nil {
		t.Errorf("a caller with list secrets got no injected source secret")
	}

	// Chaos: a BuildConfig write carried out, its answer lost.
	s.SetChaos(sim.Chaos{LostAnswerRate: 1})
	lost := bc.DeepCopy()
	lost.Name = "lost"
	if _, err := bcs.Create(ctx, lost, metav1.CreateOptions{}); err == nil {
		t.Errorf("create under LostAnswerRate=1 answered without error")
	}
	s.SetChaos(sim.Chaos{})
	if _, err := bcs.Get(ctx, "lost", metav1.GetOptions{}); err != nil {
		t.Errorf("the BuildConfig whose answer was lost was not stored: %v", err)
	}

	// Updates need resourceVersion.
	got.ResourceVersion = ""
	_, err = bcs.Update(ctx, got, metav1.UpdateOptions{})
	if want := `buildconfigs.build.openshift.io "app" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update`; err == nil || err.Error() != want {
		t.Errorf("update without resourceVersion: %v", err)
	}

	// Instantiate, follow the log, and see it complete with a digest.
	b, err := bcs.Instantiate(ctx, "app", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{"run": "1"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "app-1" || b.Status.Phase != "New" || b.Labels["openshift.io/build-config.name"] != "app" || b.Labels["run"] != "1" {
		t.Errorf("instantiated %s phase %s labels %v", b.Name, b.Status.Phase, b.Labels)
	}
	logText := readLog(t, ctx, step, "app-1", &buildv1.BuildLogOptions{Follow: true})
	done := waitTerminal(t, ctx, builds, "app-1")
	if done.Status.Phase != "Complete" || done.Status.Output.To == nil || !strings.HasPrefix(done.Status.Output.To.ImageDigest, "sha256:") {
		t.Errorf("build ended %s %s %s, output %+v\nlog:\n%s", done.Status.Phase, done.Status.Reason, done.Status.Message, done.Status.Output, logText)
	}
	if done.Spec.Revision == nil || done.Spec.Revision.Git == nil || done.Spec.Revision.Git.Commit != sb.RepoHeads["hello"] {
		t.Errorf("revision %+v, want HEAD %s", done.Spec.Revision, sb.RepoHeads["hello"])
	}
	if logText == "" {
		t.Errorf("empty log")
	}
	if st := readLogErr(ctx, step, "app-1", &buildv1.BuildLogOptions{Version: ptr(int64(0))}); st == nil || !strings.Contains(st.Error(), "build version must be greater than 0") {
		t.Errorf("log version=0: %v", st)
	}

	// A binary build.
	binBC := bc.DeepCopy()
	binBC.Name = "bin"
	binBC.Spec.Source = buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}}
	binBC.Spec.Output.To.Name = sb.Registry + "/" + ns + "/bin:latest"
	if _, err := bcs.Create(ctx, binBC, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	started := &buildv1.Build{}
	err = step.BuildV1().RESTClient().Post().Namespace(ns).Resource("buildconfigs").Name("bin").SubResource("instantiatebinary").
		VersionedParams(&buildv1.BinaryBuildRequestOptions{Commit: "0123456789abcdef0123456789abcdef01234567", AuthorName: "me"}, buildscheme.ParameterCodec).
		Body(tarGz(t, map[string]string{"Dockerfile": "FROM " + sb.Registry + "/" + sim.BaseImage + "\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi"})).
		Do(ctx).Into(started)
	if err != nil {
		t.Fatalf("instantiatebinary: %v", err)
	}
	if started.Name != "bin-1" || started.Status.Phase != "Running" {
		t.Errorf("instantiatebinary answered %s %s", started.Name, started.Status.Phase)
	}
	if done := waitTerminal(t, ctx, builds, "bin-1"); done.Status.Phase != "Complete" || done.Spec.Revision == nil || done.Spec.Revision.Git.Commit != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("binary build ended %s %s %s, revision %+v", done.Status.Phase, done.Status.Reason, done.Status.Message, done.Spec.Revision)
	}

	// Authorisation of the subresources, and the strategy check.
	_, err = nobody.BuildV1().BuildConfigs(ns).Instantiate(ctx, "app", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	if want := `buildconfigs.build.openshift.io "app" is forbidden: User "system:serviceaccount:simtest:nobody" cannot create resource "buildconfigs/instantiate" in API group "build.openshift.io" in the namespace "simtest"`; err == nil || err.Error() != want {
		t.Errorf("instantiate without permission: %v", err)
	}
	crb, err := sb.Kube.RbacV1().ClusterRoleBindings().Get(ctx, "system:build-strategy-docker-binding", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Kube.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	denied := bc.DeepCopy()
	denied.Name = "denied"
	_, err = bcs.Create(ctx, denied, metav1.CreateOptions{})
	if want := `buildconfigs.build.openshift.io "denied" is forbidden: build strategy Docker is not allowed`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("create without the docker strategy: %v", err)
	}
	_, err = bcs.Instantiate(ctx, "app", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	if want := `buildconfigs.build.openshift.io "app" is forbidden: build strategy Docker is not allowed`; err == nil || err.Error() != want {
		t.Errorf("instantiate without the docker strategy: %v", err)
	}
	_, err = builds.Patch(ctx, "app-1", types.MergePatchType, []byte(`{"status":{"cancelled":true}}`), metav1.PatchOptions{})
	if want := `builds.build.openshift.io "app-1" is forbidden: build strategy Docker is not allowed`; err == nil || err.Error() != want {
		t.Errorf("cancel without the docker strategy: %v", err)
	}
	crb.ResourceVersion = ""
	if _, err := sb.Kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Chaos: build API requests fail before anything happens.
	s.SetChaos(sim.Chaos{ErrorRate: 1})
	_, err = builds.Get(ctx, "app-1", metav1.GetOptions{})
	if !apierrors.IsInternalError(err) && !apierrors.IsServiceUnavailable(err) {
		t.Errorf("chaos: %v", err)
	}
	s.SetChaos(sim.Chaos{})

	// Chaos: watches dropped every second and log streams cut; a client
	// that re-watches still sees the build through.
	slow := bc.DeepCopy()
	slow.Name = "slow"
	slow.Spec.Strategy.DockerStrategy.Env = []corev1.EnvVar{{Name: "OCBUILD_SIM_DURATION", Value: "4s"}}
	if _, err := bcs.Create(ctx, slow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bcs.Instantiate(ctx, "slow", &buildv1.BuildRequest{ObjectMeta: metav1.ObjectMeta{Name: "slow"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.ResetStats()
	s.SetChaos(sim.Chaos{WatchDropEvery: time.Second, LogCutRate: 1})
	sel := fields.OneTermEqualSelector("metadata.name", "slow-1").String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return builds.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return builds.Watch(ctx, o)
		},
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	ev, err := watchtools.UntilWithSync(wctx, lw, &buildv1.Build{}, nil, func(e watch.Event) (bool, error) {
		b, ok := e.Object.(*buildv1.Build)
		return ok && (b.Status.Phase == "Complete" || b.Status.Phase == "Failed"), nil
	})
	wcancel()
	if err != nil || ev.Object.(*buildv1.Build).Status.Phase != "Complete" {
		t.Errorf("watching slow-1 under chaos: %v", err)
	}
	if n := s.Stats()["WATCH /apis/build.openshift.io/v1/namespaces/{ns}/builds"]; n < 3 {
		t.Errorf("%d watches of a 4 s build dropped every second, want at least 3", n)
	}
	cut := readLog(t, ctx, step, "slow-1", &buildv1.BuildLogOptions{})
	s.SetChaos(sim.Chaos{})
	full := readLog(t, ctx, step, "slow-1", &buildv1.BuildLogOptions{})
	if len(cut) >= len(full) || !strings.HasPrefix(full, cut) {
		t.Errorf("cut log %q is not a strict prefix of %q", cut, full)
	}

	stats := s.Stats()
	if stats["GET /apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}/log"] != 2 {
		t.Errorf("stats: %v", stats)
	}

	// The garbage collector removes a BuildConfig's builds.
	if err := bcs.Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := builds.Get(ctx, "app-1", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("build app-1 not garbage-collected: %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }

// clientFor makes service account name (with the step Role if bound) and
// returns a build client through the front door with its token.
func clientFor(t *testing.T, ctx context.Context, sb *sandbox.Sandbox, name string, bound bool) buildclient.Interface {
	t.Helper()
	kube := sb.Kube
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if bound {
		if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: stepRules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildclient.NewForConfig(&rest.Config{
		Host:            sb.FrontDoor.URL,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: sb.FrontDoor.CAData},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readLogErr(ctx context.Context, c buildclient.Interface, name string, o *buildv1.BuildLogOptions) error {
	rc, err := c.BuildV1().RESTClient().Get().Namespace(ns).Resource("builds").Name(name).SubResource("log").
		VersionedParams(o, buildscheme.ParameterCodec).Stream(ctx)
	if err != nil {
		return err
	}
	rc.Close()
	return nil
}

// readLog reads a build's log, retrying while the log endpoint answers 400
// (the build not started within the server's wait).
func readLog(t *testing.T, ctx context.Context, c buildclient.Interface, name string, o *buildv1.BuildLogOptions) string {
	t.Helper()
	for {
		rc, err := c.BuildV1().RESTClient().Get().Namespace(ns).Resource("builds").Name(name).SubResource("log").
			VersionedParams(o, buildscheme.ParameterCodec).Stream(ctx)
		if apierrors.IsBadRequest(err) && ctx.Err() == nil {
			t.Logf("log: %v (retrying)", err)
			continue
		}
		if err != nil {
			t.Fatalf("log of %s: %v", name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading the log of %s: %v", name, err)
		}
		return string(b)
	}
}

func waitTerminal(t *testing.T, ctx context.Context, builds interface {
	Get(context.Context, string, metav1.GetOptions) (*buildv1.Build, error)
}, name string) *buildv1.Build {
	t.Helper()
	var b *buildv1.Build
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		b, err = builds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		switch b.Status.Phase {
		case "Complete", "Failed", "Error", "Cancelled":
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("build %s not finished: %v (last %+v)", name, err, b)
	}
	return b
}

func tarGz(t *testing.T, files map[string]string) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = zw.Close()
	return bytes.NewReader(buf.Bytes())
}
