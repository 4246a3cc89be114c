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
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ocbuild/ocbuild/pkg/failure"
)

// Brief joins apimachinery's validation messages without their examples
// and regular expressions ("(e.g. 'example.com', regex used for validation
// is '…')"), which would crowd the 1 KiB shp-error-message.
func Brief(errs []string) string {
	out := make([]string, len(errs))
	for i, e := range errs {
		if j := strings.Index(e, " (e.g. "); j > 0 {
			e = e[:j]
		}
		out[i] = e
	}
	return strings.Join(out, "; ")
}

func usage(flag, value, format string, args ...any) error {
	msg := failure.NewUsage(format, args...)
	prefix := "--" + flag
	if value != "" {
		prefix += " " + quote(value)
	}
	msg.Failure.Message = prefix + ": " + msg.Failure.Message
	return msg
}

// maxQuoted is the longest value quoted in full: names (at most 253
// characters), image references (a 255-character repository, a tag and a
// digest) and ordinary paths always are. Longer values keep their start and
// their end, where the part to fix usually is.
const maxQuoted = 512

func quote(s string) string {
	return `"` + shorten(s) + `"`
}

func shorten(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	head := maxQuoted/2 - 2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head-- // never split a UTF-8 sequence
	}
	tail := len(s) - (maxQuoted/2 - 2)
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + "..." + s[tail:]
}

// pullSpecHint is the fix appended to every rejected image reference.
const pullSpecHint = "use registry/repository[:tag][@sha256:digest], in lower case, without a scheme"

// ImageReference checks a pull or push specification with the grammar
// OpenShift applies to DockerImage references (docker/distribution's, see
// reference.go), so a value OpenShift would answer with "not a valid Docker
// pull specification" is rejected before anything is written. The registry
// (docker.io) and the tag (latest) may be left out, e.g. "ubuntu:22.04" or
// "image-registry.openshift-image-registry.svc:5000/ns/app".
func ImageReference(flag, value string) error {
	if value == "" {
		return usage(flag, "", "an image reference is required, e.g. quay.io/org/app:latest")
	}
	if strings.TrimSpace(value) != value {
		return usage(flag, value, "not a valid Docker pull specification: remove the surrounding spaces")
	}
	reason, detail, ok := parseReference(value)
	if ok {
		return nil
	}
	if detail != "" {
		reason += ": " + detail
	}
	return usage(flag, value, "not a valid Docker pull specification: %s; %s", reason, pullSpecHint)
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
		return "", "", usage(flag, value, "invalid %s %q: %s", what, k, Brief(errs))
	}
	return k, v, nil
}

// RelativePath checks that p is relative and stays inside its base directory
// after cleaning, as OpenShift requires for dockerfilePath ("must be a
// relative path within your source location"); what names the field.
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

// ContextDir checks a contextDir sent to OpenShift (a Git source): OpenShift
// rejects one that starts with ".." after cleaning, even "..app" ("context
// dir must not be a relative path"). ocbuild also rejects absolute ones.
func ContextDir(flag, p string) error {
	if p == "" {
		return nil
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "/") {
		return usage(flag, p, "the context dir must be a relative path inside the repository, not an absolute path")
	}
	if clean := path.Clean(filepath.ToSlash(p)); strings.HasPrefix(clean, "..") {
		return usage(flag, p, "context dir must not be a relative path: OpenShift rejects a contextDir that starts with \"..\" (cleaned: %q); name a sub-directory of the repository whose path does not start with \"..\", e.g. app", clean)
	}
	return nil
}

// ObjectName checks a Kubernetes object name (BuildConfig, Secret, TaskRun).
func ObjectName(flag, value string) error {
	if errs := validation.IsDNS1123Subdomain(value); len(errs) > 0 {
		return usage(flag, value, "not a valid name: %s", Brief(errs))
	}
	return nil
}

// BuildConfigName checks the name of a BuildConfig ocbuild creates: a valid
// name short enough for OpenShift's build names, <name>-<number>, to be
// valid too (at most max characters).
func BuildConfigName(flag, value string, max int) error {
	if err := ObjectName(flag, value); err != nil {
		return err
	}
	if len(value) > max {
		return usage(flag, value, "too long (%d characters): OpenShift names the builds <buildconfig>-<number>, which must fit in 253 characters; use at most %d", len(value), max)
	}
	return nil
}

// Namespace checks a namespace name (a DNS label).
func Namespace(flag, value string) error {
	if errs := validation.IsDNS1123Label(value); len(errs) > 0 {
		return usage(flag, value, "not a valid namespace: %s", Brief(errs))
	}
	return nil
}

var scpLike = regexp.MustCompile(`^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:.+$`)

// GitURL checks a repository URL OpenShift can clone. OpenShift itself
// rejects what url.Parse rejects and file URLs with a host; ocbuild also
// requires a scheme it knows and a host.
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
	if u.Scheme == "file" {
		if u.Host != "" {
			return usage(flag, value, "file url %q has non-empty host %q; write file:///path/to/repo", value, u.Host)
		}
		return nil
	}
	if u.Host == "" {
		return usage(flag, value, "the URL has no host")
	}
	return nil
}

// GitRef checks a branch, tag or commit for OpenShift to check out.
func GitRef(flag, value string) error {
	if strings.HasPrefix(value, "-") {
		return usage(flag, value, "a git ref does not start with \"-\"; give a branch, tag or commit")
	}
	if strings.IndexFunc(value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return usage(flag, value, "a git ref has no spaces or control characters; give a branch, tag or commit")
	}
	return nil
}

// ScriptsURL checks the location of S2I scripts: a URL s2i can read.
func ScriptsURL(flag, value string) error {
	u, err := url.Parse(value)
	if err == nil {
		switch u.Scheme {
		case "image", "file", "http", "https":
			return nil
		}
	}
	return usage(flag, value, "use image:///path (a directory in the builder image), file:///path, http:// or https:// for the S2I scripts")
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

// Errors collects usage errors, so one run reports every bad flag at once.
type Errors struct {
	msgs []string
	seen map[string]bool
}

// Add records err, if any, and reports whether err was nil.
func (e *Errors) Add(err error) bool {
	if err == nil {
		return true
	}
	msg := err.Error()
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	if !e.seen[msg] {
		e.seen[msg] = true
		e.msgs = append(e.msgs, msg)
	}
	return false
}

// Len is the number of distinct errors recorded.
func (e *Errors) Len() int { return len(e.msgs) }

// Err returns nil when nothing was recorded, else one usage error whose
// message holds every recorded message, one a line, in the order recorded.
func (e *Errors) Err() error {
	if len(e.msgs) == 0 {
		return nil
	}
	return failure.NewUsage("%s", strings.Join(e.msgs, "\n"))
}
