package validate

import (
	"fmt"
	"regexp"
	"strings"
)

// The image reference grammar OpenShift applies to DockerImage references
// (output.to, strategy from): openshift/library-go pkg/image/reference.Parse,
// which uses docker/distribution's reference grammar without normalisation
// (pkg/image/internal/reference/regexp.go). The main module has no copy of
// that parser in its graph, and go-containerregistry's name package is more
// lenient (it accepts path components such as "a-" or "a..b"), so the
// grammar is reproduced here, expression for expression.
var (
	refAlphaNumeric = `[a-z0-9]+`
	refSeparator    = `(?:[._]|__|[-]*)`
	refComponent    = refAlphaNumeric + `(?:` + refSeparator + refAlphaNumeric + `)*`
	refHostPart     = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refHostname     = refHostPart + `(?:\.` + refHostPart + `)*(?::[0-9]+)?`
	refTag          = `[\w][\w.-]{0,127}`
	refDigest       = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
	refName         = `(?:` + refHostname + `/)?` + refComponent + `(?:/` + refComponent + `)*`

	referenceRegexp = regexp.MustCompile(`^(` + refName + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)
	componentRegexp = regexp.MustCompile(`^` + refComponent + `$`)
	hostnameRegexp  = regexp.MustCompile(`^` + refHostname + `$`)
	tagRegexp       = regexp.MustCompile(`^` + refTag + `$`)
	digestRegexp    = regexp.MustCompile(`^` + refDigest + `$`)
	digestHex       = regexp.MustCompile(`^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$`)
)

// nameTotalLengthMax is the longest repository name (registry included).
const nameTotalLengthMax = 255

// The error texts of OpenShift's parser, verbatim.
const (
	errReferenceInvalidFormat = "invalid reference format"
	errNameContainsUppercase  = "repository name must be lowercase"
	errNameEmpty              = "repository name must have at least one component"
	errDigestInvalidFormat    = "invalid checksum digest format"
	errDigestInvalidLength    = "invalid checksum digest length"
	errDigestUnsupported      = "unsupported digest algorithm"
)

var errNameTooLong = fmt.Sprintf("repository name must not be more than %d characters", nameTotalLengthMax)

// parseReference reports whether OpenShift accepts spec as a DockerImage
// reference. On rejection, reason is OpenShift's error text and detail, when
// known, says which part of spec is wrong.
func parseReference(spec string) (reason, detail string, ok bool) {
	m := referenceRegexp.FindStringSubmatch(spec)
	if m == nil {
		switch {
		case spec == "":
			return errNameEmpty, "", false
		case referenceRegexp.MatchString(strings.ToLower(spec)):
			return errNameContainsUppercase, upperDetail(spec), false
		}
		return errReferenceInvalidFormat, formatDetail(spec), false
	}
	if len(m[1]) > nameTotalLengthMax {
		return errNameTooLong, fmt.Sprintf("the repository part has %d", len(m[1])), false
	}
	if m[3] != "" {
		if reason, detail := checkDigest(m[3]); reason != "" {
			return reason, detail, false
		}
	}
	return "", "", true
}

// checkDigest is library-go's Digest.Validate.
func checkDigest(d string) (reason, detail string) {
	if !digestHex.MatchString(d) {
		return errDigestInvalidFormat, ""
	}
	alg, hex, _ := strings.Cut(d, ":")
	size := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}[alg]
	switch {
	case size == 0:
		return errDigestUnsupported, fmt.Sprintf("%q is not sha256, sha384 or sha512", alg)
	case len(hex) != 2*size:
		return errDigestInvalidLength, fmt.Sprintf("a %s digest has %d hex digits, not %d", alg, 2*size, len(hex))
	}
	return "", ""
}

// upperDetail names the path components holding upper-case letters (the
// registry host and the tag may have them).
func upperDetail(spec string) string {
	name, _, _, _ := splitReference(spec)
	comps := strings.Split(name, "/")
	if len(comps) > 1 && hostnameRegexp.MatchString(comps[0]) {
		comps = comps[1:]
	}
	var bad []string
	for _, c := range comps {
		if c != strings.ToLower(c) {
			bad = append(bad, fmt.Sprintf("%q", c))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return "write " + strings.Join(bad, ", ") + " in lower case"
}

// splitReference cuts spec into name, tag and digest the way the grammar
// does: the digest after the first "@", the tag after the first ":" of the
// last path component. hasTag tells "app:" (an empty tag) from "app".
func splitReference(spec string) (name, tag, digest string, hasTag bool) {
	name, digest, _ = strings.Cut(spec, "@")
	slash := strings.LastIndex(name, "/")
	if i := strings.Index(name[slash+1:], ":"); i >= 0 {
		name, tag, hasTag = name[:slash+1+i], name[slash+1+i+1:], true
	}
	return name, tag, digest, hasTag
}

// formatDetail finds the first part of spec the grammar rejects.
func formatDetail(spec string) string {
	if i := strings.Index(spec, "://"); i > 0 {
		return fmt.Sprintf("remove the scheme %q: a pull specification has none", spec[:i+3])
	}
	if strings.ContainsAny(spec, " \t\r\n") {
		return "it contains white space"
	}
	if strings.Count(spec, "@") > 1 {
		return `more than one "@"`
	}
	name, tag, digest, hasTag := splitReference(spec)
	if strings.Contains(spec, "@") {
		switch {
		case digest == "":
			return `nothing after "@": give a digest such as sha256:<64 hex digits>, or drop the "@"`
		case !digestRegexp.MatchString(digest):
			return fmt.Sprintf("digest %q is not <algorithm>:<at least 32 hex digits>, e.g. sha256:<64 hex digits>", digest)
		}
	}
	if hasTag && tag == "" {
		return `empty tag after ":": give a tag or drop the ":"`
	}
	if tag != "" && !tagRegexp.MatchString(tag) {
		return fmt.Sprintf(`tag %q must be 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`, tag)
	}
	if name == "" {
		return "the repository name is empty"
	}
	comps := strings.Split(name, "/")
	for _, c := range comps {
		if c == "" {
			return `empty path component (a leading, trailing or doubled "/")`
		}
	}
	if len(comps) > 1 && !hostnameRegexp.MatchString(comps[0]) && strings.ContainsAny(comps[0], ".:") {
		return fmt.Sprintf("registry host %q is not a host name with an optional :port", comps[0])
	}
	if len(comps) > 1 && hostnameRegexp.MatchString(comps[0]) {
		comps = comps[1:]
	}
	for _, c := range comps {
		if !componentRegexp.MatchString(c) {
			return fmt.Sprintf(`path component %q must be lower-case letters and digits, separated by single ".", "_", "__" or dashes (no separator at its start or end)`, c)
		}
	}
	return ""
}

// PullSpecProblem returns what OpenShift says about a DockerImage reference
// it rejects ("invalid reference format: …"), or "" when it accepts it.
// For callers that report a field path rather than a flag (ocbuild convert).
func PullSpecProblem(spec string) string {
	reason, detail, ok := parseReference(spec)
	if ok {
		return ""
	}
	if detail != "" {
		reason += ": " + detail
	}
	return reason
}
