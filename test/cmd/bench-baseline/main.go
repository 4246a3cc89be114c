// Command bench-baseline is the baseline of `make bench`'s upload figures:
// it starts a binary build the way `oc start-build <bc> --from-dir=<dir>
// --follow --wait` does, so that the bench can measure it as a child
// process exactly as it measures ocbuild (wall time, rusage maxrss):
//
//   - the directory is walked into archive/tar and compress/gzip at the
//     default level, in one stream through an io.Pipe (no temporary file,
//     no parallelism), .git excluded, and sent as the body of
//     POST buildconfigs/<bc>/instantiatebinary;
//   - then the build log is followed (GET builds/<name>/log?follow=true) to
//     its end, and the build waited for until it reaches a terminal phase
//     (a List then a Watch of the build by metadata.name), as --wait does.
//
// It exits 0 when the build is Complete and 1 otherwise, and prints
//
//	bench-baseline: uploaded <files> files, <bytes> bytes (<sent> sent) in <duration>; build <name> <phase>
//
// on stderr; the build log goes to stdout.
//
// With -tar-only DIR it only writes DIR as a plain tar (no compression, no
// network) to stdout: run with stdout on /dev/null, that is the physical
// limit of reading the tree.
//
// This is our own reimplementation of what oc does for the bench (oc is not
// available in the sandbox); it is not used by ocbuild.
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"syscall"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildscheme "github.com/openshift/client-go/build/clientset/versioned/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig (the step's service account)")
	namespace := flag.String("namespace", "", "namespace of the BuildConfig")
	bc := flag.String("buildconfig", "", "BuildConfig to start")
	dir := flag.String("from-dir", "", "directory to upload")
	tarOnly := flag.String("tar-only", "", "instead: write this directory as a plain tar to stdout and exit (the bench's physical limit)")
	flag.Parse()
	if *tarOnly != "" {
		var st stats
		if err := writeTar(os.Stdout, *tarOnly, &st); err != nil {
			fmt.Fprintln(os.Stderr, "bench-baseline:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench-baseline: tar of %d files, %d bytes\n", st.files, st.bytes)
		return
	}
	if *kubeconfig == "" || *namespace == "" || *bc == "" || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: bench-baseline --kubeconfig F --namespace NS --buildconfig BC --from-dir DIR")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, *namespace, *bc, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench-baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, ns, bc, dir string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := buildclient.NewForConfig(cfg)
	if err != nil {
		return err
	}

	// The archive: tar → gzip (default level) → pipe → request body.
	pr, pw := io.Pipe()
	var st stats
	go func() {
		zw := gzip.NewWriter(pw)
		err := writeTar(zw, dir, &st)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	body := &counter{r: pr}
	start := time.Now()
	build := &buildv1.Build{}
	err = client.BuildV1().RESTClient().Post().Namespace(ns).Resource("buildconfigs").Name(bc).
		SubResource("instantiatebinary").Body(io.Reader(body)).Do(ctx).Into(build)
	_ = pr.Close()
	if err != nil {
		return fmt.Errorf("instantiatebinary: %w", err)
	}
	took := time.Since(start)

	// --follow: the log to its end.
	rc, err := client.BuildV1().RESTClient().Get().Namespace(ns).Resource("builds").Name(build.Name).SubResource("log").
		VersionedParams(&buildv1.BuildLogOptions{Follow: true}, buildscheme.ParameterCodec).Stream(ctx)
	if err != nil {
		return fmt.Errorf("log of build %s: %w", build.Name, err)
	}
	_, err = io.Copy(os.Stdout, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("log of build %s: %w", build.Name, err)
	}

	// --wait: until the build is in a terminal phase.
	phase, err := waitTerminal(ctx, client, ns, build.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-baseline: uploaded %d files, %d bytes (%d sent) in %s; build %s %s\n",
		st.files, st.bytes, body.n.Load(), took.Round(time.Millisecond), build.Name, phase)
	if phase != buildv1.BuildPhaseComplete {
		return fmt.Errorf("build %s ended %s", build.Name, phase)
	}
	return nil
}

type stats struct {
	files int
	bytes int64
}

var gitDir = regexp.MustCompile(`(^|/)\.git(/|$)`)

// writeTar writes dir as a tar to w: paths relative to dir, symlinks as
// links, .git excluded, special files skipped.
func writeTar(w io.Writer, dir string, st *stats) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if gitDir.MatchString(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		st.files++
		st.bytes += n
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// waitTerminal lists the build by name, then watches it until its phase is
// Complete, Failed, Error or Cancelled.
func waitTerminal(ctx context.Context, client buildclient.Interface, ns, name string) (buildv1.BuildPhase, error) {
	builds := client.BuildV1().Builds(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		list, err := builds.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return "", err
		}
		if len(list.Items) == 0 {
			return "", fmt.Errorf("build %s was deleted", name)
		}
		if p := list.Items[0].Status.Phase; terminal(p) {
			return p, nil
		}
		w, err := builds.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
		if err != nil {
			return "", err
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				w.Stop()
				return "", fmt.Errorf("build %s was deleted", name)
			}
			if b, ok := ev.Object.(*buildv1.Build); ok && terminal(b.Status.Phase) {
				w.Stop()
				return b.Status.Phase, nil
			}
		}
		w.Stop()
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
}

func terminal(p buildv1.BuildPhase) bool {
	switch p {
	case buildv1.BuildPhaseComplete, buildv1.BuildPhaseFailed, buildv1.BuildPhaseError, buildv1.BuildPhaseCancelled:
		return true
	}
	return false
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
