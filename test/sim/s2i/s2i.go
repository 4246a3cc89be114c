// Package s2i writes the Dockerfile that source-to-image writes in its
// "as-dockerfile" mode, the way OpenShift's builder runs it for a Source
// strategy build (openshift/builder pkg/build/builder/sti.go configures s2i;
// source-to-image pkg/build/strategies/dockerfile/dockerfile.go writes the
// Dockerfile; buildah then builds it). It is written from that behaviour, not
// copied from it.
//
// Generate lays out a build context:
//
//	<outDir>/Dockerfile
//	<outDir>/upload/src/      a copy of the source (.s2iignore applied)
//	<outDir>/upload/scripts/  the scripts that come from the source or a URL
//
// and the Dockerfile has this shape (comments as s2i writes them omitted):
//
//	FROM <previous image> as cached                        (incremental only)
//	COPY --chown=<uid>:0 upload/scripts/save-artifacts <destination>/scripts/save-artifacts
//	                                                       (only when save-artifacts was uploaded)
//	USER <uid>
//	RUN if [ -s <save-artifacts> ]; then <save-artifacts> > /tmp/artifacts.tar; else touch /tmp/artifacts.tar; fi
//	FROM <builder image>
//	LABEL "io.openshift.build.image"="<builder>" …
//	ENV <.s2i/environment>… <build env>…
//	COPY --chown=<uid>:0 --from=cached /tmp/artifacts.tar /tmp/artifacts.tar   (incremental only)
//	COPY --chown=<uid>:0 upload/scripts <destination>/scripts                  (when any was uploaded)
//	COPY --chown=<uid>:0 upload/src <destination>/src
//	USER <uid>
//	RUN if [ -s /tmp/artifacts.tar ]; then mkdir -p <destination>/artifacts; tar -xf /tmp/artifacts.tar -C <destination>/artifacts; fi && \
//	    rm /tmp/artifacts.tar                              (incremental only)
//	RUN <assemble>
//	CMD <run>
//
// Where each script comes from, in s2i's priority order (per script):
//
//  1. Request.ScriptsURL (the BuildConfig's sourceStrategy.scripts). An
//     image:///dir URL makes every script <dir>/<name> inside the image and
//     nothing else is consulted. An http(s):// or file:// URL is tried for
//     each script (<url>/<name>); a script it lacks falls through to 2 and
//     3; if it provides none of assemble, run and save-artifacts the build
//     fails ("could not download any scripts from URL …").
//  2. The source's .s2i/bin/<name> (or the deprecated .sti/bin/<name>):
//     moved out of upload/src into upload/scripts, as s2i does.
//  3. The builder image: the directory of its io.openshift.s2i.scripts-url
//     label (image:///usr/libexec/s2i → /usr/libexec/s2i/<name>), or
//     /usr/libexec/s2i when it has none. OpenShift's builder reads that label
//     only when sourceStrategy.scripts is empty; with an http(s)/file
//     ScriptsURL a script it lacks is run from /usr/libexec/s2i. An http(s)
//     or file label is downloaded (before the source is looked at, so the
//     source's scripts still win). OpenShift reads neither io.s2i.scripts-url
//     nor io.s2i.destination (the deprecated labels): Generate warns when the
//     image has only the former.
//
// Scripts uploaded (1 or 2) run from <destination>/scripts/<name>; scripts in
// the image run from where they are. Whether an image script exists cannot
// be known here: as with s2i, a missing one fails the build at its RUN.
package s2i

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Labels and defaults s2i and OpenShift use.
const (
	ScriptsURLLabel           = "io.openshift.s2i.scripts-url"
	DeprecatedScriptsURLLabel = "io.s2i.scripts-url"
	DestinationLabel          = "io.openshift.s2i.destination"
	AssembleUserLabel         = "io.openshift.s2i.assemble-user"
	BuildImageLabel           = "io.openshift.build.image"
	S2IBuildImageLabel        = "io.openshift.s2i.build.image"

	DefaultScriptsDir   = "/usr/libexec/s2i"
	DefaultDestination  = "/tmp"
	DefaultAssembleUser = "1001"

	// ArtifactsTar is where the cached stage writes save-artifacts' output
	// (always under /tmp, whatever the destination).
	ArtifactsTar = "/tmp/artifacts.tar"
)

// The S2I scripts Generate places.
const (
	Assemble      = "assemble"
	Run           = "run"
	SaveArtifacts = "save-artifacts"
)

var scriptNames = []string{Assemble, Run, SaveArtifacts}

// KV is a name and a value (an environment variable or a label).
type KV struct{ Name, Value string }

// Builder is what the generator needs from the builder image's config.
type Builder struct {
	Image  string            // the reference the Dockerfile's FROM names (as given)
	Labels map[string]string // config labels: io.openshift.s2i.scripts-url, io.openshift.s2i.destination, io.openshift.s2i.assemble-user
	User   string            // config User ("" / "root" / "0" / "1001" / "1001:0" / "name")
	Env    []string          // config Env (KEY=VALUE); s2i's Dockerfile does not use it (the image keeps its own)
}

// Request is one Source build's input to s2i.
type Request struct {
	Builder Builder
	// SourceDir is the build's source (after contextDir); may contain
	// .s2i/bin/{assemble,run,save-artifacts}, .s2i/environment, .s2iignore.
	// "" means no source (upload/src is empty).
	SourceDir string
	// ScriptsURL is sourceStrategy.scripts: image:///path, file://… or
	// http(s)://host/path (a directory holding assemble, run, save-artifacts).
	ScriptsURL string
	// Env is the build environment, in order (OPENSHIFT_BUILD_* first, then
	// the strategy env); it follows .s2i/environment's variables in the ENV
	// instruction, so it wins on the same name.
	Env []KV
	// Labels are set on the output image (io.openshift.build.*, image
	// labels…); they override the generated io.openshift.build.image and
	// io.openshift.s2i.build.image.
	Labels []KV
	// PreviousImage is non-empty for an incremental build whose previous
	// output image exists and has save-artifacts (the caller checks, and
	// logs OpenShift's "Clean build will be performed" otherwise).
	PreviousImage string
	// RootAllowed is true when the build's service account may run as root:
	// OpenShift then sets no ALLOWED_UIDS and s2i accepts any assemble user.
	// False (the default, a restricted service account) is ALLOWED_UIDS=1-:
	// the user must be numeric and not 0.
	RootAllowed bool
	// Fetch downloads an http(s) script; nil uses http.DefaultClient.
	Fetch func(ctx context.Context, url string) ([]byte, error)
}

// Origin says where a script comes from.
type Origin string

// Script origins.
const (
	FromURL    Origin = "url"    // downloaded from ScriptsURL (or an http/file scripts-url label) into upload/scripts
	FromSource Origin = "source" // the source's .s2i/bin, moved into upload/scripts
	FromImage  Origin = "image"  // inside the builder image
)

// Script is where one script comes from and where the Dockerfile runs it.
type Script struct {
	Name   string // assemble, run, save-artifacts
	Origin Origin
	Path   string // the path inside the image
	URL    string // the URL downloaded (FromURL) or the source path (FromSource, "<source-dir>/.s2i/bin/assemble")
}

// Result is what was written.
type Result struct {
	Dockerfile string   // path of the written Dockerfile (inside outDir)
	Warnings   []string // human lines to log
	User       string   // the assemble user chosen (numeric unless RootAllowed)
	Scripts    []Script // assemble, run, save-artifacts, in that order
}

// Failure reasons, as s2i sets them in its result and OpenShift's builder
// copies into the build's status.reason / status.message.
const (
	ReasonAssembleUserForbidden = "AssembleUserForbidden"
	ReasonScriptsFetchFailed    = "FetchScriptsFailed"
	ReasonInstallScriptsFailed  = "InstallScriptsFailed"
	ReasonFetchSourceFailed     = "FetchSourceFailed"
	ReasonFSOperationFailed     = "FileSystemOperationFailed"
	ReasonDockerfileCreate      = "DockerFileCreationFailed"
	ReasonGenericS2IBuildFailed = "GenericS2IBuildFailed"
)

var reasonMessages = map[string]string{
	ReasonAssembleUserForbidden: "Assemble user for S2I build is forbidden.",
	ReasonScriptsFetchFailed:    "Failed to fetch specified scripts.",
	ReasonInstallScriptsFailed:  "Failed to install specified scripts.",
	ReasonFetchSourceFailed:     "Failed to fetch source for build.",
	ReasonFSOperationFailed:     "Failed to perform filesystem operation.",
	ReasonDockerfileCreate:      "Failed to create Dockerfile.",
	ReasonGenericS2IBuildFailed: "Generic S2I Build failure - check S2I logs for details.",
}

// Error is a failure to generate, with the build status reason and message
// OpenShift sets for it. Error() is what s2i reports (the build log's line).
type Error struct {
	Reason  string // e.g. AssembleUserForbidden
	Message string // e.g. "Assemble user for S2I build is forbidden."
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Reason: reason, Message: reasonMessages[reason], Err: err}
}

func failf(reason, format string, a ...any) error {
	return fail(reason, fmt.Errorf(format, a...))
}

// Generate writes into outDir (created if missing; must be empty) the
// Dockerfile, upload/src/ (a copy of SourceDir: regular files, directories
// and symlinks as symlinks, never followed, modes kept, .s2iignore applied;
// .git only if SourceDir has it) and upload/scripts/ (scripts from the
// source's .s2i/bin or a downloaded ScriptsURL, mode 0755).
func Generate(ctx context.Context, r Request, outDir string) (*Result, error) {
	g := &gen{r: r, out: outDir, res: &Result{}}
	if err := g.run(ctx); err != nil {
		return nil, err
	}
	return g.res, nil
}

type gen struct {
	r   Request
	out string
	res *Result

	user       string
	dest       string
	imageDir   string          // the image's scripts directory
	uploaded   map[string]bool // scripts in upload/scripts
	labels     []KV
	env        []KV
	srcScripts []string // scripts taken from the source, for the log line
	urlScripts []string // scripts downloaded, for the log line
}

func (g *gen) warnf(format string, a ...any) {
	g.res.Warnings = append(g.res.Warnings, fmt.Sprintf(format, a...))
}

func (g *gen) run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := g.r.Builder
	// s2i checks the user before anything else (Dockerfile.Build).
	user, err := assembleUser(b, g.r.RootAllowed)
	if err != nil {
		return err
	}
	g.user, g.res.User = user, user
	if b.Image == "" {
		return failf(ReasonGenericS2IBuildFailed, "builder image name cannot be empty")
	}
	if err := checkRef("builder image", b.Image); err != nil {
		return err
	}
	if g.r.PreviousImage != "" {
		if err := checkRef("previous image", g.r.PreviousImage); err != nil {
			return err
		}
	}
	g.dest = DefaultDestination
	if d := b.Labels[DestinationLabel]; d != "" {
		g.dest = d
	}
	if err := checkPath("destination ("+DestinationLabel+")", g.dest); err != nil {
		return err
	}

	if err := g.prepareOut(); err != nil {
		return err
	}
	if err := g.copySource(ctx); err != nil {
		return err
	}
	if err := g.installScripts(ctx); err != nil {
		return err
	}
	if err := g.environment(); err != nil {
		return err
	}
	if err := g.outputLabels(); err != nil {
		return err
	}
	df, err := g.dockerfile()
	if err != nil {
		return err
	}
	g.res.Dockerfile = filepath.Join(g.out, "Dockerfile")
	if err := os.WriteFile(g.res.Dockerfile, []byte(df), 0o644); err != nil {
		return fail(ReasonDockerfileCreate, err)
	}
	return nil
}

// assembleUser is OpenShift's choice of the assemble user: the image's User,
// replaced by its io.openshift.s2i.assemble-user label when the label is
// present, the group part dropped; s2i defaults an empty one to 1001. With
// ALLOWED_UIDS=1- (a service account that may not run as root) it must be
// numeric and at least 1: s2i then fails with NewUserNotAllowedError, whose
// message names the user where it means the image (as s2i's Dockerfile
// strategy calls it).
func assembleUser(b Builder, rootAllowed bool) (string, error) {
	u := b.User
	if v, ok := b.Labels[AssembleUserLabel]; ok {
		u = v
	}
	if before, _, ok := strings.Cut(u, ":"); ok {
		u = before
	}
	u = strings.TrimSpace(u)
	if u == "" {
		u = DefaultAssembleUser
	}
	if !rootAllowed {
		if n, err := strconv.Atoi(u); err != nil || n < 1 {
			return "", failf(ReasonAssembleUserForbidden,
				"image %q must specify a user that is numeric and within the range of allowed users", u)
		}
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-+", c)) {
			return "", failf(ReasonAssembleUserForbidden, "assemble user %q is not a valid user name", u)
		}
	}
	return u, nil
}

// prepareOut creates outDir, upload/src and upload/scripts.
func (g *gen) prepareOut() error {
	if err := os.MkdirAll(g.out, 0o755); err != nil {
		return fail(ReasonFSOperationFailed, err)
	}
	ents, err := os.ReadDir(g.out)
	if err != nil {
		return fail(ReasonFSOperationFailed, err)
	}
	if len(ents) > 0 {
		return failf(ReasonFSOperationFailed, "output directory %s is not empty", g.out)
	}
	for _, d := range []string{"upload/src", "upload/scripts"} {
		if err := os.MkdirAll(filepath.Join(g.out, filepath.FromSlash(d)), 0o755); err != nil {
			return fail(ReasonFSOperationFailed, err)
		}
	}
	return nil
}

func (g *gen) srcDir() string     { return filepath.Join(g.out, "upload", "src") }
func (g *gen) scriptsDir() string { return filepath.Join(g.out, "upload", "scripts") }

// scriptPath is where the Dockerfile finds a script.
func (g *gen) scriptPath(name string) string {
	if g.uploaded[name] {
		return path.Join(g.dest, "scripts", name)
	}
	return path.Join(g.imageDir, name)
}

// outputLabels: s2i's generated io.openshift.build.image (OpenShift's label
// namespace) and io.openshift.s2i.build.image, then the request's labels
// (overriding), then io.openshift.s2i.scripts-url when ScriptsURL is set and
// io.openshift.s2i.destination when the builder sets it.
func (g *gen) outputLabels() error {
	set := func(k, v string) {
		for i := range g.labels {
			if g.labels[i].Name == k {
				g.labels[i].Value = v
				return
			}
		}
		g.labels = append(g.labels, KV{k, v})
	}
	set(BuildImageLabel, g.r.Builder.Image)
	set(S2IBuildImageLabel, g.r.Builder.Image)
	for _, l := range g.r.Labels {
		if l.Name == "" {
			return failf(ReasonDockerfileCreate, "label with an empty name (value %q)", l.Value)
		}
		set(l.Name, l.Value)
	}
	if g.r.ScriptsURL != "" {
		set(ScriptsURLLabel, g.r.ScriptsURL)
	}
	if d := g.r.Builder.Labels[DestinationLabel]; d != "" {
		set(DestinationLabel, d)
	}
	for _, l := range g.labels {
		if strings.ContainsRune(l.Name+l.Value, 0) {
			return failf(ReasonDockerfileCreate, "label %q contains a NUL character", l.Name)
		}
	}
	return nil
}
