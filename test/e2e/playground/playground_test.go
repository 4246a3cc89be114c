// Package playground checks `make sandbox` as a newcomer uses it: the
// playground starts as the command starts it, and the shipped samples,
// applied unchanged to the namespace they name, build and report digest,
// size and commit.
package playground

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
	"github.com/ocbuild/ocbuild/test/playground"
	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim"
)

var pg *playground.Playground

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ocbuild-e2e-playground-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if pg, err = playground.Start(ctx, playground.Options{Dir: dir, Out: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the playground:", err)
		fmt.Fprintf(os.Stderr, "sandbox state and logs kept in %s\n", dir)
		return 1
	}
	code := m.Run()
	pg.Stop()
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "sandbox state and logs kept in %s\n", dir)
	}
	return code
}

// The samples as shipped: their Git URL is github.com's, their output the
// internal registry, and the Flask one's pip reads the default index.
func TestShippedSamplesBuild(t *testing.T) {
	for _, sample := range []string{"go-hello-docker", "flask-s2i", "existing-buildconfig", "custom-buildconfig"} {
		t.Run(sample, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// kubectl apply -n ocbuild-samples -f samples/<sample>/buildconfig.yaml
			if path := filepath.Join(pg.Root, "samples", sample, "buildconfig.yaml"); fileExists(path) {
				objs, err := playground.ReadObjects(path)
				if err == nil {
					err = kit.Apply(ctx, pg.Sandbox.AdminConfig, playground.SamplesNamespace, objs)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var b buildv1beta1.Build
			readSample(t, filepath.Join(sample, "build.yaml"), &b)
			var br buildv1beta1.BuildRun
			readSample(t, filepath.Join(sample, "buildrun.yaml"), &br)
			if b.Spec.Source.Git.URL != playground.SamplesGitURL {
				t.Fatalf("%s builds %s; the playground maps only %s", sample, b.Spec.Source.Git.URL, playground.SamplesGitURL)
			}
			sb := pg.Sandbox
			ns := playground.SamplesNamespace
			b.Namespace, br.Namespace = ns, ns
			if _, err := sandbox.RegisterBuild(ctx, sb.Shipwright, &b); err != nil {
				t.Fatal(err)
			}
			created, err := sb.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Create(ctx, &br, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			done := waitDone(ctx, t, ns, created.Name)
			if c := done.Status.GetCondition(buildv1beta1.Succeeded); c.Status != corev1.ConditionTrue {
				t.Fatalf("BuildRun %s: %s: %s\n%s", done.Name, c.Reason, c.Message, stepLog(t, done))
			}
			// The builders push the internal registry's images to the
			// sandbox registry.
			mirror, err := sim.MirrorOf(sb.Registry, b.Spec.Output.Image)
			if err != nil {
				t.Fatal(err)
			}
			img, err := kit.Inspect(ctx, mirror)
			if err != nil {
				t.Fatal(err)
			}
			if done.Status.Output == nil || done.Status.Output.Digest != img.Digest {
				t.Errorf("status.output = %+v; the registry has %s@%s", done.Status.Output, mirror, img.Digest)
			}
			if done.Status.Source == nil || done.Status.Source.Git == nil || done.Status.Source.Git.CommitSha != sb.RepoHeads["ocbuild"] {
				t.Errorf("status.source = %+v; want commit %s, the HEAD the git server serves for %s", done.Status.Source, sb.RepoHeads["ocbuild"], playground.SamplesGitURL)
			}
		})
	}
}

func readSample(t *testing.T, rel string, into any) {
	t.Helper()
	path := filepath.Join(pg.Root, "samples", rel)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func waitDone(ctx context.Context, t *testing.T, ns, name string) *buildv1beta1.BuildRun {
	t.Helper()
	var got *buildv1beta1.BuildRun
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		br, err := pg.Sandbox.Shipwright.ShipwrightV1beta1().BuildRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = br
		c := br.Status.GetCondition(buildv1beta1.Succeeded)
		return c != nil && c.Status != corev1.ConditionUnknown && br.Status.CompletionTime != nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for BuildRun %s/%s: %v", ns, name, err)
	}
	return got
}

// stepLog is the ocbuild step's log, for failure messages.
func stepLog(t *testing.T, br *buildv1beta1.BuildRun) string {
	t.Helper()
	if br.Status.TaskRunName == nil {
		return "(no TaskRun)"
	}
	data, err := os.ReadFile(filepath.Join(pg.Sandbox.Executor.TaskRunDir(br.Namespace, *br.Status.TaskRunName), "logs", "openshift-build.log"))
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(data))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
