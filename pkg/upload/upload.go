// Package upload starts a binary build: it streams a gzip'd tar of a source
// directory into buildconfigs/instantiatebinary and returns the Build the
// server started.
//
// The archive is produced while it is sent (an io.Pipe, no temporary file), so
// memory stays bounded whatever the tree's size. The server reads the body
// only once the build is Running and answers only after it has consumed it
// all, so the request may sit idle for minutes; a progress line is printed at
// a fixed interval either way. The server does not notice a client that
// gives up (its wait and its attach stream ignore the request's context):
// the build it created runs on with whatever part of the body arrived, so
// the caller (pkg/driver) must find and cancel it.
package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync/atomic"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/pkg/archive"
)

// Request describes one binary build start.
type Request struct {
	Client      rest.Interface // the build.openshift.io/v1 REST client
	Namespace   string
	BuildConfig string
	Dir         string
	IncludeGit  bool
	Revision    buildv1.BinaryBuildRequestOptions // revision.* query parameters
	// Progress receives a progress line every Interval (default 5 s).
	Progress func(string)
	Interval time.Duration
	// Warn receives archive warnings (skipped special files).
	Warn func(string)
}

// Result is what a successful upload reports.
type Result struct {
	Build    *buildv1.Build
	Stats    archive.Stats
	Sent     int64 // compressed bytes sent
	Duration time.Duration
}

// Start sends the archive and returns the started build. Errors from the
// server are returned unchanged (a *errors.StatusError) so the caller can
// classify them; the build named in a 400 can be found with BuildName.
func Start(ctx context.Context, r Request) (*Result, error) {
	if r.Interval == 0 {
		r.Interval = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	opts := []archive.Option{}
	if r.IncludeGit {
		opts = append(opts, archive.IncludeGit())
	}
	if r.Warn != nil {
		opts = append(opts, archive.WithWarnings(r.Warn))
	}
	pr, archived := archive.Reader(ctx, r.Dir, opts...)
	body := &counter{r: pr}

	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go r.progress(body, start, stop)

	params := r.Revision
	if params.Commit == "" {
		// A revision without a commit is not recorded by the server.
		params = buildv1.BinaryBuildRequestOptions{AsFile: params.AsFile}
	}
	params.Name = r.BuildConfig
	build := &buildv1.Build{}
	err := r.Client.Post().Namespace(r.Namespace).Resource("buildconfigs").Name(r.BuildConfig).
		SubResource("instantiatebinary").VersionedParams(&params, buildscheme.ParameterCodec).
		Body(io.Reader(body)).Do(ctx).Into(build)
	// Stop the archiver if the server answered without reading everything.
	_ = pr.Close()
	cancel()
	stats, aerr := archived()
	if err != nil {
		return nil, err
	}
	if aerr != nil && !errors.Is(aerr, context.Canceled) && !errors.Is(aerr, io.ErrClosedPipe) {
		return nil, fmt.Errorf("upload: archiving %s: %w", r.Dir, aerr)
	}
	return &Result{Build: build, Stats: stats, Sent: body.n.Load(), Duration: time.Since(start)}, nil
}

func (r Request) progress(c *counter, start time.Time, stop <-chan struct{}) {
	if r.Progress == nil {
		return
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := c.n.Load()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			if rate == 0 {
				// Nothing moved: the server has not started reading (it
				// does once the build runs), or it is still unpacking.
				r.Progress(fmt.Sprintf("upload: %s sent after %s; waiting for the build to start and take the source",
					Bytes(n), now.Sub(start).Round(time.Second)))
				continue
			}
			r.Progress(fmt.Sprintf("upload: %s sent in %s (%s/s)", Bytes(n), now.Sub(start).Round(time.Second), Bytes(int64(rate))))
		}
	}
}

type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Bytes formats a byte count for people (KiB, MiB, GiB).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var buildInMessage = regexp.MustCompile(`\bbuild ([a-z0-9]([-a-z0-9.]*[a-z0-9])?) (failed|was cancelled|was deleted|encountered an error|to run|to start|with status)`)

// BuildName extracts the build named in one of instantiatebinary's 400/504
// messages ("build app-3 failed: …", "unable to wait for build app-3 to run: …").
func BuildName(msg string) (string, bool) {
	m := buildInMessage.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return m[1], true
}
