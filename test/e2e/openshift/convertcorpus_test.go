package openshift

// The converter's golden corpus (pkg/convert/testdata: OpenShift's
// documented BuildConfig examples) as a user applies it: every Build
// `ocbuild convert` writes is accepted by the real Shipwright controller
// (strategy found, parameters declared, secrets referenced as it checks
// them), and every BuildConfig it writes by the build API. The corpus's
// sources and builders are on the internet, so its builds are not run
// here; TestConvertRoundTrip runs converted builds end to end.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	buildv1beta1 "github.com/shipwright-io/build/pkg/apis/build/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ocbuild/ocbuild/pkg/cli"
	"github.com/ocbuild/ocbuild/test/e2e/openshift/kit"
)

func TestConvertedCorpusIsAccepted(t *testing.T) {
	yamls, _ := filepath.Glob(filepath.Join(repoRoot, "pkg", "convert", "testdata", "*.yaml"))
	jsons, _ := filepath.Glob(filepath.Join(repoRoot, "pkg", "convert", "testdata", "*.json"))
	files := append(yamls, jsons...)
	if len(files) < 10 {
		t.Fatalf("%d corpus files in pkg/convert/testdata, want the whole corpus", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		if name == "invalid" {
			continue // BuildConfigs OpenShift refuses: the golden test covers their messages
		}
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t, 4*time.Minute)
			ns := newNamespace(t, true)
			var stdout, stderr bytes.Buffer
			args := []string{"convert", "--buildrun", file}
			if code := cli.Main(ctx, args, &stdout, &stderr, "e2e"); code != 0 {
				t.Fatalf("ocbuild %s exited %d:\n%s", strings.Join(args, " "), code, stderr.String())
			}
			r := utilyaml.NewYAMLReader(bufio.NewReader(&stdout))
			var created []string
			for {
				doc, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var meta metav1.TypeMeta
				if err := yaml.Unmarshal(doc, &meta); err != nil {
					t.Fatal(err)
				}
				switch meta.Kind {
				case "BuildConfig":
					// Applied as written, as kubectl apply does: the converter
					// keeps fields it does not know, and the server decides.
					var u unstructured.Unstructured
					if err := yaml.Unmarshal(doc, &u.Object); err != nil {
						t.Fatal(err)
					}
					u.SetNamespace(ns)
					if err := kit.Apply(ctx, sb.AdminConfig, ns, []*unstructured.Unstructured{&u}); err != nil {
						t.Fatalf("the build API refuses the converted BuildConfig %s: %v", u.GetName(), err)
					}
					if _, err := builds.BuildV1().BuildConfigs(ns).Get(ctx, u.GetName(), metav1.GetOptions{}); err != nil {
						t.Fatal(err)
					}
					created = append(created, "BuildConfig "+u.GetName())
				case "Build":
					var b buildv1beta1.Build
					if err := yaml.UnmarshalStrict(doc, &b); err != nil {
						t.Fatalf("converted Build: %v\n%s", err, doc)
					}
					b.Namespace = ns
					createSecretsOf(t, &b)
					createBuild(t, &b) // fails unless Shipwright registers it
					created = append(created, "Build "+b.Name+" ("+b.Spec.Strategy.Name+")")
				case "BuildRun":
					var br buildv1beta1.BuildRun
					if err := yaml.UnmarshalStrict(doc, &br); err != nil {
						t.Fatalf("converted BuildRun: %v\n%s", err, doc)
					}
				default:
					t.Fatalf("ocbuild convert wrote a %s %s", meta.APIVersion, meta.Kind)
				}
			}
			if len(created) == 0 {
				t.Fatalf("ocbuild convert wrote nothing for %s:\n%s", file, stderr.String())
			}
			t.Logf("accepted: %s", strings.Join(created, ", "))
		})
	}
}

// createSecretsOf creates the secrets a Build names (Shipwright refuses a
// Build whose secrets do not exist), as a user migrating has them.
func createSecretsOf(t *testing.T, b *buildv1beta1.Build) {
	t.Helper()
	var names []string
	if b.Spec.Source != nil && b.Spec.Source.Git != nil && b.Spec.Source.Git.CloneSecret != nil {
		names = append(names, *b.Spec.Source.Git.CloneSecret)
	}
	if b.Spec.Output.PushSecret != nil {
		names = append(names, *b.Spec.Output.PushSecret)
	}
	for _, p := range b.Spec.ParamValues {
		if p.SingleValue != nil && p.SecretValue != nil {
			names = append(names, p.SecretValue.Name)
		}
		for _, v := range p.Values {
			if v.SecretValue != nil {
				names = append(names, v.SecretValue.Name)
			}
		}
	}
	for _, n := range names {
		_, err := sb.Kube.CoreV1().Secrets(b.Namespace).Create(testContext(t, time.Minute), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: n},
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{"placeholder": "the migrating namespace's own secret"},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}
