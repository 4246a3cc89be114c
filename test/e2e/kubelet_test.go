package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/exec"
	"k8s.io/utils/ptr"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/ocbuild/ocbuild/test/sandbox"
)

// TestKubeletAPI: what kubectl logs, exec and attach do, through
// kube-apiserver and the sandbox's kubelet, on a TaskRun's pod: a finished
// step's log (timestamps, tailLines, limitBytes, sinceTime, no previous
// instance), exec into a running step (SPDY and websocket: stdout, stderr,
// stdin, exit code), and attach and a followed log that end when the step
// ends.
func TestKubeletAPI(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)

	n, err := sb.Kube.CoreV1().Nodes().Get(ctx, sandbox.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s: %v", sandbox.NodeName, err)
	}
	if !nodeReady(n) || len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Address != "127.0.0.1" {
		t.Fatalf("node %s is not Ready on 127.0.0.1: %+v", n.Name, n.Status)
	}

	tr, err := sb.Tekton.TektonV1().TaskRuns(ns).Create(ctx, &pipelinev1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "kubelet"},
		Spec: pipelinev1.TaskRunSpec{TaskSpec: &pipelinev1.TaskSpec{Steps: []pipelinev1.Step{
			{Name: "hello", Image: sandbox.HostImage, Script: "echo one\necho two >&2\necho three\n"},
			// Answers each ping file with a pong line until a release file
			// appears in its working directory.
			{Name: "wait", Image: sandbox.HostImage, Script: `echo started
while [ ! -f release ]; do
  if [ -f ping ]; then rm -f ping; echo pong; fi
  sleep 0.05
done
echo released
`},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pod string
	poll(ctx, t, "step hello to end and step wait to run", func(ctx context.Context) (bool, error) {
		cur, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		if err != nil || cur.Status.PodName == "" {
			return false, nil
		}
		pod = cur.Status.PodName
		p, err := sb.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 2 {
			return false, nil
		}
		return p.Status.ContainerStatuses[0].State.Terminated != nil && p.Status.ContainerStatuses[1].State.Running != nil, nil
	})

	// As kubectl logs reads a log.
	logs := func(opts *corev1.PodLogOptions) (string, error) {
		r, err := sb.Kube.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}

	t.Run("logs", func(t *testing.T) {
		out, err := logs(&corev1.PodLogOptions{Container: "step-hello", Timestamps: true, TailLines: ptr.To[int64](2)})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("tailLines=2 gave %q", out)
		}
		for i, want := range []string{"two", "three"} {
			ts, text, _ := strings.Cut(lines[i], " ")
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || text != want {
				t.Errorf("line %d = %q, want an RFC3339Nano timestamp and %q", i, lines[i], want)
			}
		}
		if out, err := logs(&corev1.PodLogOptions{Container: "step-hello"}); err != nil || out != "one\ntwo\nthree\n" {
			t.Errorf("log = %q, %v; want one, two, three", out, err)
		}
		if out, err := logs(&corev1.PodLogOptions{Container: "step-hello", LimitBytes: ptr.To[int64](6)}); err != nil || out != "one\ntw" {
			t.Errorf("limitBytes=6 gave %q, %v", out, err)
		}
		if out, err := logs(&corev1.PodLogOptions{Container: "step-hello", TailLines: ptr.To[int64](0)}); err != nil || out != "" {
			t.Errorf("tailLines=0 gave %q, %v", out, err)
		}
		future := metav1.NewTime(time.Now().Add(time.Hour))
		if out, err := logs(&corev1.PodLogOptions{Container: "step-hello", SinceTime: &future}); err != nil || out != "" {
			t.Errorf("sinceTime in the future gave %q, %v", out, err)
		}
		past := metav1.NewTime(time.Now().Add(-time.Hour))
		if out, err := logs(&corev1.PodLogOptions{Container: "step-hello", SinceTime: &past}); err != nil || out != "one\ntwo\nthree\n" {
			t.Errorf("sinceTime an hour ago gave %q, %v", out, err)
		}
		_, err = logs(&corev1.PodLogOptions{Container: "step-hello", Previous: true})
		if want := `previous terminated container "step-hello" in pod "` + pod + `" not found`; !strings.Contains(serverMessage(err), want) {
			t.Errorf("previous=true: %v, want %s", serverMessage(err), want)
		}
	})

	for _, transport := range []string{"spdy", "websocket"} {
		t.Run("exec-"+transport, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := podExec(ctx, t, transport, ns, pod, "step-wait", []string{"sh", "-c", "echo hi; echo err >&2; exit 3"}, nil, &stdout, &stderr)
			// As kubectl reads the exit code.
			var exitErr exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
				t.Errorf("exec error = %v (%T), want exit code 3", err, err)
			}
			if stdout.String() != "hi\n" || stderr.String() != "err\n" {
				t.Errorf("stdout %q, stderr %q; want hi and err", stdout.String(), stderr.String())
			}
			stdout.Reset()
			if err := podExec(ctx, t, transport, ns, pod, "step-wait", []string{"cat"}, strings.NewReader("from stdin"), &stdout, nil); err != nil || stdout.String() != "from stdin" {
				t.Errorf("cat with stdin: %q, %v", stdout.String(), err)
			}
		})
	}

	t.Run("attach-and-follow", func(t *testing.T) {
		var followed string
		var followErr error
		var attached syncBuffer
		var attachErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			var r io.ReadCloser
			r, followErr = sb.Kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "step-wait", Follow: true}).Stream(ctx)
			if followErr == nil {
				var b []byte
				b, followErr = io.ReadAll(r)
				followed = string(b)
				r.Close()
			}
		}()
		go func() {
			defer wg.Done()
			attachErr = podStream(ctx, t, "spdy", "attach", ns, pod, "step-wait", nil, nil, &attached, io.Discard)
		}()
		// Attach shows output from the moment it connects: ping the step
		// until its pong comes through.
		poll(ctx, t, "a pong through attach", func(ctx context.Context) (bool, error) {
			if strings.Contains(attached.String(), "pong") {
				return true, nil
			}
			return false, podExec(ctx, t, "spdy", ns, pod, "step-wait", []string{"touch", "ping"}, nil, io.Discard, io.Discard)
		})
		// /workspace is the step's working directory, mapped for exec too.
		if err := podExec(ctx, t, "spdy", ns, pod, "step-wait", []string{"touch", "/workspace/release"}, nil, io.Discard, io.Discard); err != nil {
			t.Fatalf("exec touch release: %v", err)
		}
		wg.Wait() // both end because the step ends
		if followErr != nil || !strings.HasPrefix(followed, "started\n") || !strings.HasSuffix(followed, "pong\nreleased\n") {
			t.Errorf("followed log = %q, %v; want started … pong, released", followed, followErr)
		}
		if attachErr != nil || !strings.HasSuffix(attached.String(), "released\n") || strings.Contains(attached.String(), "started") {
			t.Errorf("attach output = %q, %v; want what came after attaching, ending with released", attached.String(), attachErr)
		}
	})

	poll(ctx, t, "the TaskRun to succeed", func(ctx context.Context) (bool, error) {
		cur, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		return err == nil && cur.IsSuccessful(), nil
	})
	// The pod has succeeded: kube-apiserver refuses exec, as for any
	// completed pod.
	if err := podExec(ctx, t, "spdy", ns, pod, "step-wait", []string{"true"}, nil, io.Discard, io.Discard); err == nil {
		t.Error("exec into a finished step succeeded")
	}
}

// serverMessage is what kubectl prints of an API error: its message and,
// for a body that was not a Status (a kubelet's answer), the body.
func serverMessage(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Sprint(err)
	}
	msg := status.Status().Message
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			msg += ": " + c.Message
		}
	}
	return msg
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podExec(ctx context.Context, t *testing.T, transport, ns, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return podStream(ctx, t, transport, "exec", ns, pod, container, command, stdin, stdout, stderr)
}

// podStream runs pods/exec or pods/attach as kubectl does.
func podStream(ctx context.Context, t *testing.T, transport, subresource, ns, pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	t.Helper()
	req := sb.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource(subresource)
	if subresource == "exec" {
		req.VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil}, scheme.ParameterCodec)
	} else {
		req.VersionedParams(&corev1.PodAttachOptions{Container: container, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil}, scheme.ParameterCodec)
	}
	var executor remotecommand.Executor
	var err error
	if transport == "websocket" {
		executor, err = remotecommand.NewWebSocketExecutor(sb.AdminConfig, "GET", req.URL().String())
	} else {
		executor, err = remotecommand.NewSPDYExecutor(sb.AdminConfig, "POST", req.URL())
	}
	if err != nil {
		t.Fatal(err)
	}
	return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// syncBuffer is a bytes.Buffer safe to read while a stream writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWaiterThroughExec: what `shp build upload` does to Shipwright's
// waiter step: stream files in with pods/exec (tar into a /workspace path)
// and end the wait with `/ko-app/waiter done`, both run with the step's
// container paths mapped and its image's binary.
func TestWaiterThroughExec(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	tr, err := sb.Tekton.TektonV1().TaskRuns(ns).Create(ctx, &pipelinev1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "waiter"},
		Spec: pipelinev1.TaskRunSpec{TaskSpec: &pipelinev1.TaskSpec{Steps: []pipelinev1.Step{{
			Name:    "source-local",
			Image:   sandbox.WaiterImage,
			Command: []string{"/ko-app/waiter"},
			Args:    []string{"start", "--lock-file=/workspace/waiter.lock"},
		}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pod string
	poll(ctx, t, "the waiter to run", func(ctx context.Context) (bool, error) {
		cur, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		if err != nil || cur.Status.PodName == "" {
			return false, nil
		}
		pod = cur.Status.PodName
		p, err := sb.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil, nil
	})
	const container = "step-source-local"
	poll(ctx, t, "the waiter's lock file", func(ctx context.Context) (bool, error) {
		return podExec(ctx, t, "spdy", ns, pod, container, []string{"test", "-f", "/workspace/waiter.lock"}, nil, io.Discard, io.Discard) == nil, nil
	})
	var tarball bytes.Buffer
	if err := podExec(ctx, t, "spdy", ns, pod, container, []string{"sh", "-c", "mkdir -p /tmp/kubelet-e2e-src && cd /tmp/kubelet-e2e-src && echo uploaded > file && tar cf - file && rm -rf /tmp/kubelet-e2e-src"}, nil, &tarball, io.Discard); err != nil {
		t.Fatalf("making a tarball: %v", err)
	}
	if err := podExec(ctx, t, "spdy", ns, pod, container, []string{"sh", "-c", "mkdir -p /workspace/source && tar xf - -C /workspace/source"}, &tarball, io.Discard, os.Stderr); err != nil {
		t.Fatalf("streaming the source in: %v", err)
	}
	if err := podExec(ctx, t, "spdy", ns, pod, container, []string{"/ko-app/waiter", "done", "--lock-file=/workspace/waiter.lock"}, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("waiter done: %v", err)
	}
	poll(ctx, t, "the TaskRun to succeed", func(ctx context.Context) (bool, error) {
		cur, err := sb.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		return err == nil && cur.IsSuccessful(), nil
	})
	b, err := os.ReadFile(filepath.Join(sb.Executor.TaskRunDir(ns, tr.Name), "workspace", "source", "file"))
	if err != nil || string(b) != "uploaded\n" {
		t.Errorf("uploaded file: %q, %v", b, err)
	}
}
