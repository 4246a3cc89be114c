package openshift

// What `shp build upload <build> <dir>` does, for Builds without a source
// (a converted Binary BuildConfig): a BuildRun with a Local source, whose
// pod Shipwright gives a waiter step; the client streams the directory in
// with pods/exec and ends the wait with `waiter done`, the protocol of
// shipwright-io/cli's upload (its streamer and its waiter commands).

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

const (
	// localSourceContainer is Shipwright's waiter step
	// (sources.WaiterContainerName), as a container of the pod.
	localSourceContainer = "step-source-local"
	// localSourceLock is the lock file Shipwright's waiter template names.
	localSourceLock = "/shp-tmp/waiter.lock"
	// localSourceDir is where the upload lands: the source root the
	// strategies' steps read.
	localSourceDir = "/workspace/source"
)

// withLocalSource gives a BuildRun the Local source `shp build upload`
// creates.
func withLocalSource(br *buildv1beta1.BuildRun) {
	br.Spec.Source = &buildv1beta1.BuildRunSource{
		Type:  buildv1beta1.LocalType,
		Local: &buildv1beta1.Local{Name: "local-copy", Timeout: &metav1.Duration{Duration: 5 * time.Minute}},
	}
}

// uploadLocalSource streams dir into the waiter step of BuildRun br's pod
// and ends the wait, as `shp build upload` does.
func uploadLocalSource(ctx context.Context, t *testing.T, ns, br, dir string) {
	t.Helper()
	var pod string
	poll(ctx, t, 3*time.Minute, "the waiter step of BuildRun "+br+" to run", func(ctx context.Context) (bool, error) {
		trs, err := sb.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: buildv1beta1.LabelBuildRun + "=" + br})
		if err != nil || len(trs.Items) == 0 || trs.Items[0].Status.PodName == "" {
			return false, nil
		}
		if done := trs.Items[0].Status.GetCondition("Succeeded"); done != nil && done.Status != corev1.ConditionUnknown {
			t.Fatalf("TaskRun %s ended before the upload: %s: %s", trs.Items[0].Name, done.Reason, done.Message)
		}
		pod = trs.Items[0].Status.PodName
		p, err := sb.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == localSourceContainer {
				return cs.State.Running != nil, nil
			}
		}
		return false, nil
	})
	// The waiter writes its lock file once it has started.
	poll(ctx, t, time.Minute, "the waiter's lock file", func(ctx context.Context) (bool, error) {
		return podExec(ctx, ns, pod, []string{"test", "-f", localSourceLock}, nil, io.Discard) == nil, nil
	})
	archive := tarDir(t, dir)
	size := archive.Len()
	var stderr bytes.Buffer
	if err := podExec(ctx, ns, pod, []string{"tar", "xf", "-", "-C", localSourceDir}, archive, &stderr); err != nil {
		t.Fatalf("streaming %s into pod %s: %v\n%s", dir, pod, err, stderr.String())
	}
	if err := podExec(ctx, ns, pod, []string{"/ko-app/waiter", "done", "--lock-file=" + localSourceLock}, nil, &stderr); err != nil {
		t.Fatalf("ending the wait in pod %s: %v\n%s", pod, err, stderr.String())
	}
	t.Logf("uploaded %s into BuildRun %s (pod %s, %d bytes of tar)", dir, br, pod, size)
}

// podExec runs command in the waiter container with pods/exec.
func podExec(ctx context.Context, ns, pod string, command []string, stdin io.Reader, stderr io.Writer) error {
	req := sb.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: localSourceContainer, Command: command, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewSPDYExecutor(sb.AdminConfig, "POST", req.URL())
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: io.Discard, Stderr: stderr})
}

// tarDir is dir's regular files and directories as a tar stream.
func tarDir(t *testing.T, dir string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatalf("archiving %s: %v", dir, err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// writeFiles writes files (path → content) under a new temporary
// directory and returns it.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, fs.FileMode(0o644)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
