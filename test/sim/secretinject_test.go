package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	buildv1 "github.com/openshift/api/build/v1"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

func matchSecret(name string, typ corev1.SecretType, patterns ...string) corev1.Secret {
	s := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: map[string]string{"other": "*://*/*"}}, Type: typ}
	for i, p := range patterns {
		s.Annotations[buildv1.BuildSourceSecretMatchURIAnnotationPrefix+string(rune('a'+i))] = p
	}
	return s
}

var injectableSecrets = []corev1.Secret{
	matchSecret("github-org", corev1.SecretTypeBasicAuth, "https://github.com/org/*"),
	matchSecret("github-any", corev1.SecretTypeOpaque, "*://github.com/*"),
	matchSecret("example", corev1.SecretTypeOpaque, "*://*.example.com/*", "  "),
	matchSecret("ssh-key", corev1.SecretTypeSSHAuth, "ssh://github.com/*"),
	matchSecret("corp", corev1.SecretTypeBasicAuth, "*://*.corp.com/*"),
	matchSecret("mixed", corev1.SecretTypeOpaque, "github.com/*", "https://host/no*wildcard*in/*", "ftp://x/*"),
	matchSecret("port", corev1.SecretTypeOpaque, "https://git.local:8443/*"),
	{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
}

func TestMatchSourceSecret(t *testing.T) {
	for uri, want := range map[string]string{
		"https://github.com/org/app.git":   "github-org", // the longest pattern wins
		"https://github.com/other/app.git": "github-any",
		"git://github.com/org/app.git":     "github-any",
		"ssh://github.com/org/app.git":     "ssh-key", // basic-auth secrets never match ssh
		"https://git.example.com/x.git":    "example",
		"http://example.com/x.git":         "example", // *.domain includes the domain
		"https://notexample.com/x.git":     "",
		"https://corp.com/a/b":             "corp",
		"ssh://git.corp.com/a/b":           "", // basic auth, ssh URL
		"https://git.local:8443/r.git":     "port",
		"https://git.local/r.git":          "",
		"https://host/no-wildcard-in/x":    "mixed", // invalid patterns skipped; * in a path matches anything
		"https://other.org/x.git":          "",
		"git@github.com:org/app.git":       "", // not a URL
		"file:///srv/git/app.git":          "",
	} {
		if got := matchSourceSecret(injectableSecrets, uri); got != want {
			t.Errorf("matchSourceSecret(%s) = %q, want %q", uri, got, want)
		}
	}
	// Equal lengths: the first secret by name.
	two := []corev1.Secret{matchSecret("b", "", "https://x.org/*"), matchSecret("a", "", "https://x.org/*")}
	if got := matchSourceSecret(two, "https://x.org/r"); got != "a" {
		t.Errorf("tie: %q, want a", got)
	}
}

// fakeSecretLister answers as RBAC would: step may list secrets, others
// get 403.
type fakeSecretLister struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeSecretLister) list(_ context.Context, user authenticationv1.UserInfo, ns string) ([]corev1.Secret, error) {
	f.mu.Lock()
	f.calls = append(f.calls, user.Username+" "+ns)
	f.mu.Unlock()
	if user.Username != stepUser {
		return nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "",
			errEmpty(`User "`+user.Username+`" cannot list resource "secrets" in API group "" in the namespace "`+ns+`"`))
	}
	return injectableSecrets, nil
}

type errEmpty string

func (e errEmpty) Error() string { return string(e) }

// sourceSecretOf runs the mutating webhook on a create of bc by user and
// returns the resulting spec.source.sourceSecret name.
func sourceSecretOf(t *testing.T, a *admitter, user string, op admissionv1.Operation, bc *buildv1.BuildConfig) string {
	t.Helper()
	req := &admissionv1.AdmissionRequest{
		UID: "1", Resource: metav1.GroupVersionResource{Group: Group, Version: "v1", Resource: "buildconfigs"},
		Operation: op, Name: bc.Name, Namespace: "ns", Object: raw(t, bc),
		UserInfo: authenticationv1.UserInfo{Username: user, Groups: []string{"system:authenticated"}},
	}
	if op == admissionv1.Update {
		req.OldObject = raw(t, bc)
	}
	resp := a.mutate(context.Background(), req)
	if !resp.Allowed {
		t.Fatalf("%s by %s denied: %+v", op, user, resp.Result)
	}
	out := req.Object.Raw
	if resp.Patch != nil {
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = p.Apply(out); err != nil {
			t.Fatal(err)
		}
	}
	var got buildv1.BuildConfig
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Source.SourceSecret == nil {
		return ""
	}
	return got.Spec.Source.SourceSecret.Name
}

// TestMutateInjectsSourceSecret: a Git BuildConfig created without a source
// secret gets the matching one when the caller may list secrets; without
// that permission it is created as it is (the 403 is ignored).
func TestMutateInjectsSourceSecret(t *testing.T) {
	lister := &fakeSecretLister{}
	a := &admitter{secrets: lister.list, log: t.Logf}
	bc := validBC()
	bc.Spec.Source.Git.URI = "https://github.com/org/app.git"
	if got := sourceSecretOf(t, a, stepUser, admissionv1.Create, bc); got != "github-org" {
		t.Errorf("create by %s: sourceSecret %q, want github-org", stepUser, got)
	}
	if got := sourceSecretOf(t, a, "system:serviceaccount:ns:nobody", admissionv1.Create, bc); got != "" {
		t.Errorf("create without list secrets: sourceSecret %q, want none", got)
	}
	if strings.Join(lister.calls, ",") != stepUser+" ns,system:serviceaccount:ns:nobody ns" {
		t.Errorf("lists as %v", lister.calls)
	}
	lister.calls = nil
	// Not looked up: an update, a BuildConfig with a source secret, a
	// binary one; no match: none set.
	if got := sourceSecretOf(t, a, stepUser, admissionv1.Update, withRV(bc)); got != "" {
		t.Errorf("update: sourceSecret %q", got)
	}
	own := bc.DeepCopy()
	own.Spec.Source.SourceSecret = &corev1.LocalObjectReference{Name: "mine"}
	if got := sourceSecretOf(t, a, stepUser, admissionv1.Create, own); got != "mine" {
		t.Errorf("own secret replaced by %q", got)
	}
	bin := bc.DeepCopy()
	bin.Spec.Source = buildv1.BuildSource{Binary: &buildv1.BinaryBuildSource{}}
	if got := sourceSecretOf(t, a, stepUser, admissionv1.Create, bin); got != "" {
		t.Errorf("binary: sourceSecret %q", got)
	}
	if len(lister.calls) != 0 {
		t.Errorf("secrets listed for %v", lister.calls)
	}
	other := bc.DeepCopy()
	other.Spec.Source.Git.URI = "https://other.org/app.git"
	if got := sourceSecretOf(t, a, stepUser, admissionv1.Create, other); got != "" {
		t.Errorf("no match: sourceSecret %q", got)
	}
}

func withRV(bc *buildv1.BuildConfig) *buildv1.BuildConfig {
	c := bc.DeepCopy()
	c.ResourceVersion = "7"
	return c
}

// TestImpersonatingSecretLister: the list goes to the API server
// impersonating the caller (user, groups, UID, extra), so RBAC decides as
// for the caller; the webhook served over HTTP injects or, on the 403,
// allows the create unchanged.
func TestImpersonatingSecretLister(t *testing.T) {
	var mu sync.Mutex
	var headers []http.Header
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v1/namespaces/ns/secrets" || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		user := r.Header.Get("Impersonate-User")
		if user != stepUser {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Code: 403, Reason: metav1.StatusReasonForbidden,
				Message: `secrets is forbidden: User "` + user + `" cannot list resource "secrets" in API group "" in the namespace "ns"`})
			return
		}
		_ = json.NewEncoder(w).Encode(corev1.SecretList{TypeMeta: metav1.TypeMeta{Kind: "SecretList", APIVersion: "v1"}, Items: injectableSecrets})
	}))
	defer api.Close()
	list := impersonatingSecretLister(&rest.Config{Host: api.URL, BearerToken: "admin-token"})
	step := authenticationv1.UserInfo{Username: stepUser, UID: "u-1", Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}}}
	got, err := list(context.Background(), step, "ns")
	if err != nil || len(got) != len(injectableSecrets) {
		t.Fatalf("list as step: %d secrets, %v", len(got), err)
	}
	h := headers[0]
	if h.Get("Impersonate-User") != stepUser || strings.Join(h.Values("Impersonate-Group"), ",") != "system:serviceaccounts,system:authenticated" ||
		h.Get("Impersonate-Uid") != "u-1" || !hasExtra(h, "p") ||
		h.Get("Authorization") != "Bearer admin-token" {
		t.Errorf("request headers %v", h)
	}
	if _, err := list(context.Background(), authenticationv1.UserInfo{Username: "nobody"}, "ns"); !apierrors.IsForbidden(err) {
		t.Errorf("list as nobody: %v, want 403", err)
	}

	// The webhook over HTTP.
	srv := httptest.NewServer(&admitter{secrets: list, log: t.Logf})
	defer srv.Close()
	bc := validBC()
	bc.Spec.Source.Git.URI = "https://github.com/org/app.git"
	for user, want := range map[string]string{stepUser: "github-org", "nobody": ""} {
		review := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: "abc", Resource: metav1.GroupVersionResource{Group: Group, Version: "v1", Resource: "buildconfigs"},
				Operation: admissionv1.Create, Name: "app", Namespace: "ns", Object: raw(t, bc),
				UserInfo: authenticationv1.UserInfo{Username: user},
			},
		}
		body, _ := json.Marshal(review)
		resp, err := http.Post(srv.URL+"/mutate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Response == nil || !out.Response.Allowed {
			t.Fatalf("%s: %v %+v", user, err, out.Response)
		}
		p, _ := jsonpatch.DecodePatch(out.Response.Patch)
		patched, err := p.Apply(review.Request.Object.Raw)
		if err != nil {
			t.Fatal(err)
		}
		var res buildv1.BuildConfig
		_ = json.Unmarshal(patched, &res)
		name := ""
		if s := res.Spec.Source.SourceSecret; s != nil {
			name = s.Name
		}
		if name != want {
			t.Errorf("create by %s: sourceSecret %q, want %q", user, name, want)
		}
	}
}

// hasExtra reports an Impersonate-Extra-* header with value v.
func hasExtra(h http.Header, v string) bool {
	for k, vs := range h {
		if strings.HasPrefix(k, "Impersonate-Extra-") && len(vs) == 1 && vs[0] == v {
			return true
		}
	}
	return false
}
