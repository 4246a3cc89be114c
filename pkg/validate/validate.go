// Package validate checks flag values before anything is written to the
// cluster, mirroring OpenShift's BuildConfig validation so users see a message
// naming the flag and the fix instead of a raw 422 from the server.
//
// Every function returns a *failure.Usage (exit code 2) or nil.
package validate

import (
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ocbuild/ocbuild/pkg/failure"
)

func usage(flag, value, format string, args ...any) error {
	msg := failure.NewUsage(format, args...)
	prefix := "--" + flag
	if value != "" {
		prefix += " " + quote(value)
	}
	msg.Failure.Message = prefix + ": " + msg.Failure.Message
	return msg
}

func quote(s string) string {
	if len(s) > 80 {
		cut := 77
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // never split a UTF-8 sequence
		}
		s = s[:cut] + "..."
	}
	return `"` + s + `"`
}

// ImageReference checks a pull or push specification the way OpenShift does
// for DockerImage references ("not a valid Docker pull specification").
func ImageReference(flag, value string) error {
	if value == "" {
		return usage(flag, "", "an image reference is required, e.g. quay.io/org/app:latest")
	}
	if strings.TrimSpace(value) != value {
		return usage(flag, value, "not a valid Docker pull specification: remove the surrounding spaces")
	}
	if repo, _, _ := strings.Cut(value, "@"); strings.HasPrefix(repo, "/") || strings.HasSuffix(repo, "/") || strings.Contains(repo, "//") {
		// go-containerregistry accepts empty path components (and so
		// "https://host/repo"); OpenShift does not.
		return usage(flag, value, "not a valid Docker pull specification: empty path component; use registry/repository[:tag][@sha256:digest] without a scheme")
	}
	// Weak validation, as OpenShift's reference parser: the registry
	// (docker.io) and the tag (latest) may be left out, e.g. "ubuntu:22.04"
	// or "image-registry.openshift-image-registry.svc:5000/ns/app".
	if _, err := name.ParseReference(value, name.WeakValidation); err != nil {
		return usage(flag, value, "not a valid Docker pull specification: %v; use registry/repository[:tag][@sha256:digest] in lower case", err)
	}
	return nil
}

// KeyValue splits K=V for an environment variable or build argument and checks
// the name as OpenShift does for build env.
func KeyValue(flag, value string) (string, string, error) {
	return splitPair(flag, value, "name", validation.IsEnvVarName,
		"expected NAME=VALUE (an = is missing); to pass an empty value write NAME=")
}

// Label splits K=V for an output image label; OpenShift requires a qualified
// name (e.g. io.openshift.tags or example.com/owner).
func Label(flag, value string) (string, string, error) {
	return splitPair(flag, value, "label name", validation.IsQualifiedName, "expected NAME=VALUE (an = is missing)")
}

func splitPair(flag, value, what string, check func(string) []string, missing string) (string, string, error) {
	k, v, ok := strings.Cut(value, "=")
	if !ok {
		return "", "", usage(flag, value, "%s", missing)
	}
	if k == "" {
		return "", "", usage(flag, value, "the %s before = is empty", what)
	}
	if errs := check(k); len(errs) > 0 {
		return "", "", usage(flag, value, "invalid %s %q: %s", what, k, strings.Join(errs, "; "))
	}
	return k, v, nil
}

// RelativePath checks that p is relative and stays inside its base directory
// after cleaning, as OpenShift requires for contextDir and dockerfilePath.
func RelativePath(flag, p, what string) error {
	if p == "" {
		return nil
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "/") {
		return usage(flag, p, "%s must be a relative path inside the source, not an absolute path", what)
	}
	clean := path.Clean(filepath.ToSlash(p))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return usage(flag, p, "%s must be a relative path within your source location; remove the \"..\"", what)
	}
	return nil
}

// ObjectName checks a Kubernetes object name (BuildConfig, Secret).
func ObjectName(flag, value string) error {
	if errs := validation.IsDNS1123Subdomain(value); len(errs) > 0 {
		return usage(flag, value, "not a valid name: %s", strings.Join(errs, "; "))
	}
	return nil
}

var scpLike = regexp.MustCompile(`^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:.+$`)

// GitURL checks a repository URL OpenShift can clone.
func GitURL(flag, value string) error {
	if scpLike.MatchString(value) {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil {
		return usage(flag, value, "not a valid URL: %v", err)
	}
	switch u.Scheme {
	case "http", "https", "git", "ssh", "file":
	default:
		return usage(flag, value, "use an http(s)://, ssh://, git:// or user@host:path repository URL")
	}
	if u.Host == "" && u.Scheme != "file" {
		return usage(flag, value, "the URL has no host")
	}
	return nil
}

// RunPolicy checks the BuildConfig run policy.
func RunPolicy(flag, value string) error {
	switch value {
	case "Serial", "Parallel", "SerialLatestOnly":
		return nil
	}
	return usage(flag, value, "run policy must be Parallel, Serial, or SerialLatestOnly")
}

// OneOf checks value against a closed set.
func OneOf(flag, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return usage(flag, value, "must be one of %s", strings.Join(allowed, ", "))
}

// Fail returns a usage error about flag with a free-form fix.
func Fail(flag, value, format string, args ...any) error {
	return usage(flag, value, format, args...)
}
