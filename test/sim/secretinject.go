package sim

// Source-secret injection (reference §9.1; openshift-apiserver's
// build.openshift.io/BuildConfigSecretInjector admission plugin and the
// urlpattern matcher it uses): on creating a Git BuildConfig without
// spec.source.sourceSecret, the secrets of the namespace are listed as the
// caller, and the one whose build.openshift.io/source-secret-match-uri-*
// annotation matches the repository URL most specifically (the longest
// pattern) is set as the source secret. Any error, a 403 on the list
// included, is ignored: the BuildConfig is created without one.

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// secretLister lists a namespace's secrets as user, so that RBAC applies
// as for that user.
type secretLister func(ctx context.Context, user authenticationv1.UserInfo, namespace string) ([]corev1.Secret, error)

// impersonatingSecretLister lists secrets with cfg (an identity allowed to
// impersonate) impersonating the user, its groups, UID and extra values.
func impersonatingSecretLister(cfg *rest.Config) secretLister {
	return func(ctx context.Context, user authenticationv1.UserInfo, namespace string) ([]corev1.Secret, error) {
		if user.Username == "" {
			return nil, errors.New("no user to impersonate")
		}
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user.Username, UID: user.UID, Groups: user.Groups}
		if len(user.Extra) > 0 {
			c.Impersonate.Extra = map[string][]string{}
			for k, v := range user.Extra {
				c.Impersonate.Extra[k] = v
			}
		}
		kube, err := kubernetes.NewForConfig(c)
		if err != nil {
			return nil, err
		}
		list, err := kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}
}

// urlPattern is one source-secret-match-uri pattern:
// <scheme>://<host><path>, scheme one of *, git, http, https, ssh; host *,
// *.<domain> (the domain and its subdomains) or a literal; path with *
// matching anything (slashes included).
type urlPattern struct {
	text                 string
	scheme, host, pathRe *regexp.Regexp
	secret               string
}

var urlPatternSyntax = regexp.MustCompile(`^(?:(\*|git|http|https|ssh)://)(\*|(?:\*\.)?[^@/*]+)(/.*)$`)

func newURLPattern(text string) (*urlPattern, error) {
	m := urlPatternSyntax.FindStringSubmatch(text)
	if m == nil {
		return nil, errors.New("invalid pattern")
	}
	p := &urlPattern{text: text}
	scheme := `^` + regexp.QuoteMeta(m[1]) + `$`
	if m[1] == "*" {
		scheme = `^(git|http|https|ssh)$`
	}
	host := `^` + regexp.QuoteMeta(m[2]) + `$`
	switch {
	case m[2] == "*":
		host = `^.*$`
	case strings.HasPrefix(m[2], "*."):
		host = `^(?:.*\.)?` + regexp.QuoteMeta(m[2][2:]) + `$`
	}
	parts := strings.Split(m[3], "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	var err error
	if p.scheme, err = regexp.Compile(scheme); err != nil {
		return nil, err
	}
	if p.host, err = regexp.Compile(host); err != nil {
		return nil, err
	}
	if p.pathRe, err = regexp.Compile(`^` + strings.Join(parts, `.*`) + `$`); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *urlPattern) matches(u *url.URL) bool {
	return p.scheme.MatchString(u.Scheme) && p.host.MatchString(u.Host) && p.pathRe.MatchString(u.Path)
}

// matchSourceSecret returns the secret whose match-uri pattern matches uri
// most specifically (the longest pattern; equal lengths: the first secret
// by name), or "". Basic-auth secrets never match ssh URLs, SSH-auth
// secrets only match them.
func matchSourceSecret(secrets []corev1.Secret, uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	sorted := append([]corev1.Secret(nil), secrets...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var patterns []*urlPattern
	for _, s := range sorted {
		if s.Type == corev1.SecretTypeBasicAuth && u.Scheme == "ssh" || s.Type == corev1.SecretTypeSSHAuth && u.Scheme != "ssh" {
			continue
		}
		for _, k := range sortedKeys(s.Annotations) {
			if !strings.HasPrefix(k, buildv1.BuildSourceSecretMatchURIAnnotationPrefix) {
				continue
			}
			v := strings.TrimSpace(s.Annotations[k])
			if v == "" {
				continue
			}
			p, err := newURLPattern(v)
			if err != nil {
				continue
			}
			p.secret = s.Name
			patterns = append(patterns, p)
		}
	}
	sort.SliceStable(patterns, func(i, j int) bool { return len(patterns[i].text) > len(patterns[j].text) })
	for _, p := range patterns {
		if p.matches(u) {
			return p.secret
		}
	}
	return ""
}

// injectSourceSecret sets bc's source secret from the caller's secrets
// (create of a Git BuildConfig without one); errors are only logged.
func (a *admitter) injectSourceSecret(ctx context.Context, user authenticationv1.UserInfo, namespace string, bc *buildv1.BuildConfig) {
	src := &bc.Spec.Source
	if a.secrets == nil || src.SourceSecret != nil || src.Git == nil {
		return
	}
	if _, err := url.Parse(src.Git.URI); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	secrets, err := a.secrets(ctx, user, namespace)
	if err != nil {
		// A 403 (no list secrets for the caller) included: ignored.
		a.logf("secretinjector: buildconfig %s/%s: failed to list Secrets as %q: %v", namespace, bc.Name, user.Username, err)
		return
	}
	if name := matchSourceSecret(secrets, src.Git.URI); name != "" {
		a.logf("secretinjector: matched secret %s/%s to buildconfig %s", namespace, name, bc.Name)
		src.SourceSecret = &corev1.LocalObjectReference{Name: name}
	}
}
