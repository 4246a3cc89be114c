package sim

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogs(t *testing.T) {
	l := NewLogs()
	k := Key{"ns", "b-1"}
	if lines, closed := l.Read(k, time.Time{}); lines != nil || closed {
		t.Fatalf("empty log: %v %v", lines, closed)
	}
	ch := l.Changed(k)
	l.Append(k, "one")
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled by Append")
	}
	l.Append(k, "two")
	lines, closed := l.Read(k, time.Time{})
	if len(lines) != 2 || lines[0].Text != "one" || lines[1].Text != "two" || closed {
		t.Fatalf("lines %v closed %v", lines, closed)
	}
	since, _ := l.Read(k, lines[1].Time)
	if len(since) == 0 || since[len(since)-1].Text != "two" {
		t.Errorf("since: %v", since)
	}
	ch = l.Changed(k)
	l.Close(k)
	<-ch
	l.Append(k, "after close")
	lines, closed = l.Read(k, time.Time{})
	if len(lines) != 2 || !closed {
		t.Errorf("after close: %v %v", lines, closed)
	}
	select {
	case <-l.Changed(k):
	default:
		t.Error("Changed of a closed log must be closed")
	}
	l.Delete(k)
	if lines, _ := l.Read(k, time.Time{}); lines != nil {
		t.Errorf("after delete: %v", lines)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestSourcesDeliverAwait(t *testing.T) {
	s := NewSources(t.TempDir())
	ctx := context.Background()
	k := Key{"ns", "bc-1"}
	got := make(chan string, 1)
	go func() {
		dir, err := s.Await(ctx, k)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := os.ReadFile(filepath.Join(dir, "app", "main.go"))
		got <- string(b)
	}()
	if err := s.Deliver(ctx, k, "", bytes.NewReader(tarGz(t, map[string]string{"app/main.go": "package main", "../escape": "x"}))); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "package main" {
		t.Fatalf("awaited %q", g)
	}
	if err := s.Deliver(ctx, k, "", strings.NewReader("")); err == nil {
		t.Error("second delivery accepted")
	}
	s.(*dirSources).Release(k)

	// zip, and asFile; the executor may await first or second
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("dir/z.txt")
	w.Write([]byte("zipped"))
	zw.Close()
	k2 := Key{"ns", "bc-2"}
	go func() { _ = s.Deliver(ctx, k2, "", bytes.NewReader(zbuf.Bytes())) }()
	dir, err := s.Await(ctx, k2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "dir", "z.txt")); string(b) != "zipped" {
		t.Errorf("zip: %q", b)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Error("an archive member escaped")
	}
	k3 := Key{"ns", "bc-3"}
	go func() { _ = s.Deliver(ctx, k3, "app.jar", strings.NewReader("PK-not-really")) }()
	dir, err = s.Await(ctx, k3)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "app.jar")); string(b) != "PK-not-really" {
		t.Errorf("asFile: %q", b)
	}
}

func TestSourcesBadArchive(t *testing.T) {
	s := NewSources(t.TempDir())
	ctx := context.Background()
	k := Key{"ns", "bc-1"}
	delivered := make(chan error, 1)
	go func() {
		delivered <- s.Deliver(ctx, k, "", strings.NewReader("this is not an archive, but long enough to be read as a tar header block by the reader .................................................................................................................................................................................................................................................................................................................................................................................................................................................................."))
	}()
	_, err := s.Await(ctx, k)
	if err == nil || !strings.Contains(err.Error(), ExtractFailedMessage) {
		t.Fatalf("Await: %v", err)
	}
	select {
	case err := <-delivered:
		t.Fatalf("Deliver returned before the executor released the build: %v", err)
	default:
	}
	s.(*dirSources).Release(k)
	if err := <-delivered; err == nil || !strings.Contains(err.Error(), ExtractFailedMessage) {
		t.Fatalf("Deliver: %v", err)
	}

	// nobody awaits: Deliver gives up with its context
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Deliver(cctx, Key{"ns", "bc-2"}, "", bytes.NewReader(tarGz(t, map[string]string{"a": "b"}))); !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver without Await: %v", err)
	}
	// Await gives up with its context
	if _, err := s.Await(cctx, Key{"ns", "bc-3"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Await without Deliver: %v", err)
	}
}

func TestSourcesReleased(t *testing.T) {
	s := NewSources(t.TempDir()).(*dirSources)
	ctx := context.Background()
	// the build ends while the upload waits to be read
	k := Key{"ns", "bc-1"}
	errc := make(chan error, 1)
	body := &eofSignal{r: bytes.NewReader(tarGz(t, map[string]string{"a": "b"})), eof: make(chan struct{})}
	go func() { errc <- s.Deliver(ctx, k, "", body) }()
	<-body.eof // Deliver is past its start
	s.Release(k)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "ended before it read its source") {
		t.Errorf("Deliver: %v", err)
	}
	// and an upload arriving after the end fails at once
	if err := s.Deliver(ctx, Key{"ns", "bc-1"}, "", strings.NewReader("")); err == nil {
		t.Error("delivery to an ended build accepted")
	}
	k2 := Key{"ns", "bc-2"}
	s.Release(k2)
	if err := s.Deliver(ctx, k2, "", strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "has ended") {
		t.Errorf("Deliver after Release: %v", err)
	}
	s.Forget(k2)
	if _, ok := s.slots[k2]; ok {
		t.Error("Forget kept the slot")
	}
}

// eofSignal closes eof when r is read to the end.
type eofSignal struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}
