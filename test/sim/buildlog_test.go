package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const logPath = "/apis/build.openshift.io/v1/namespaces/ns/builds/app-1/log"

func storedBuild(phase buildv1.BuildPhase) *buildv1.Build {
	b := &buildv1.Build{
		ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "ns", Annotations: map[string]string{
			buildv1.BuildConfigAnnotation: "app", buildv1.BuildNumberAnnotation: "1"}},
		Spec: buildv1.BuildSpec{CommonSpec: validBC().Spec.CommonSpec},
	}
	b.Status.Phase = phase
	return b
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading log: %v", err)
	}
	return string(b)
}

// appendLines adds lines with distinct, known times.
func appendLines(l Logs, k Key, lines ...string) {
	for _, s := range lines {
		l.Append(k, s)
	}
}

func TestParseLogOptions(t *testing.T) {
	cases := []struct {
		q    string
		code int
		msg  string
	}{
		{"follow=true&nowait=true&tailLines=10&version=3&timestamps=true", 0, ""},
		{"version=0", 422, `BuildLogOptions.build.openshift.io "" is invalid: version: Invalid value: 0: build version must be greater than 0`},
		{"version=2&previous=true", 422, `BuildLogOptions.build.openshift.io "" is invalid: previous: Invalid value: true: cannot use previous when a version is specified`},
		{"tailLines=-1", 422, `BuildLogOptions.build.openshift.io "" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0`},
		{"limitBytes=0", 422, `BuildLogOptions.build.openshift.io "" is invalid: limitBytes: Invalid value: 0: must be greater than 0`},
		{"sinceSeconds=0", 422, `BuildLogOptions.build.openshift.io "" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0`},
		{"sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z", 422, "BuildLogOptions.build.openshift.io \"\" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"follow=maybe", 400, `strconv.ParseBool: parsing "maybe": invalid syntax`},
		{"sinceTime=yesterday", 400, `parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		o, st := parseLogOptions(q)
		switch {
		case c.code == 0 && st != nil:
			t.Errorf("%s: %v", c.q, st)
		case c.code == 0:
			if !o.Follow || !o.NoWait || *o.TailLines != 10 || *o.Version != 3 || !o.Timestamps {
				t.Errorf("%s: %+v", c.q, o)
			}
		case st == nil:
			t.Errorf("%s: accepted", c.q)
		case int(st.ErrStatus.Code) != c.code || st.ErrStatus.Message != c.msg:
			t.Errorf("%s: got %d %q\nwant %d %q", c.q, st.ErrStatus.Code, st.ErrStatus.Message, c.code, c.msg)
		}
	}
}

func TestLogByPhase(t *testing.T) {
	cases := []struct {
		phase buildv1.BuildPhase
		query string
		code  int
		msg   string
	}{
		{buildv1.BuildPhaseCancelled, "", 400, "build app-1 was cancelled. No logs are available."},
		{buildv1.BuildPhaseError, "", 400, "build app-1 is in an error state. No logs are available."},
		{buildv1.BuildPhaseFailed, "", 400, `pod "app-1-build" not found`},
		{buildv1.BuildPhaseNew, "?nowait=true", 200, ""},
		{buildv1.BuildPhasePending, "?nowait=true&follow=true", 200, ""},
	}
	for _, c := range cases {
		h := newHarness(t, storedBuild(c.phase))
		resp := h.do("GET", logPath+c.query, nil)
		if c.code == 200 {
			if body := readAll(t, resp); resp.StatusCode != 200 || body != "" {
				t.Errorf("%s%s: %d %q, want 200 and an empty body", c.phase, c.query, resp.StatusCode, body)
			}
			continue
		}
		expectStatus(t, resp, c.code, c.msg)
	}
	h := newHarness(t)
	expectStatus(t, h.do("GET", logPath, nil), 404, `builds.build.openshift.io "app-1" not found`)
}

func TestLogWaitOutcomes(t *testing.T) {
	cases := []struct {
		name string
		to   buildv1.BuildPhase
		code int
		msg  string
	}{
		{"timeout", "", 400, "unable to wait for build app-1 to run: timed out waiting for the condition"},
		{"error", buildv1.BuildPhaseError, 400, "build app-1 encountered an error: No logs are available."},
		{"cancelled", buildv1.BuildPhaseCancelled, 400, "build app-1 was cancelled: No logs are available."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, storedBuild(buildv1.BuildPhaseNew))
			h.fd.logWaitTimeout = 300 * time.Millisecond
			if c.to != "" {
				h.fd.logWaitTimeout = 10 * time.Second
				go func() {
					h.awaitWatch()
					h.setPhase("ns", "app-1", c.to, "", "")
				}()
			}
			start := time.Now()
			expectStatus(t, h.do("GET", logPath, nil), c.code, c.msg)
			if c.to == "" && time.Since(start) < 300*time.Millisecond {
				t.Errorf("answered before the wait timeout")
			}
		})
	}
}

func TestLogStreamOptions(t *testing.T) {
	h := newHarness(t, storedBuild(buildv1.BuildPhaseComplete))
	k := Key{"ns", "app-1"}
	appendLines(h.fd.logs, k, "one", "two", "three", "four")
	h.fd.logs.Close(k)
	lines, _ := h.fd.logs.Read(k, time.Time{})

	resp := h.do("GET", logPath, nil)
	if got := readAll(t, resp); got != "one\ntwo\nthree\nfour\n" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("log = %q (%s)", got, resp.Header.Get("Content-Type"))
	}
	if got := readAll(t, h.do("GET", logPath+"?tailLines=2", nil)); got != "three\nfour\n" {
		t.Errorf("tailLines=2: %q", got)
	}
	if got := readAll(t, h.do("GET", logPath+"?limitBytes=6", nil)); got != "one\ntw" {
		t.Errorf("limitBytes=6: %q", got)
	}
	got := readAll(t, h.do("GET", logPath+"?timestamps=true&tailLines=1", nil))
	if want := lines[3].Time.UTC().Format(time.RFC3339Nano) + " four\n"; got != want {
		t.Errorf("timestamps: %q, want %q", got, want)
	}
	since := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if got := readAll(t, h.do("GET", logPath+"?sinceTime="+since, nil)); got != "" {
		t.Errorf("sinceTime in the future: %q", got)
	}
	if got := readAll(t, h.do("GET", logPath+"?sinceSeconds=3600&follow=true", nil)); got != "one\ntwo\nthree\nfour\n" {
		t.Errorf("sinceSeconds: %q", got)
	}
}

func TestLogFollow(t *testing.T) {
	h := newHarness(t, storedBuild(buildv1.BuildPhaseNew))
	k := Key{"ns", "app-1"}
	go func() {
		h.awaitWatch()
		h.setPhase("ns", "app-1", buildv1.BuildPhaseRunning, "", "")
	}()
	resp := h.do("GET", logPath+"?follow=true", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d: %+v", resp.StatusCode, readStatus(t, resp))
	}
	br := bufio.NewReader(resp.Body)
	for i := range 50 {
		line := fmt.Sprintf("line %d", i)
		h.fd.logs.Append(k, line)
		got, err := br.ReadString('\n')
		if err != nil || got != line+"\n" {
			t.Fatalf("read %q, %v; want %q", got, err, line)
		}
	}
	// Several lines at once, then the end.
	appendLines(h.fd.logs, k, "a", "b", "c")
	h.fd.logs.Close(k)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "a\nb\nc\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

func TestLogFollowEndsWhenBuildGone(t *testing.T) {
	h := newHarness(t, storedBuild(buildv1.BuildPhaseRunning))
	h.fd.followCheck = 50 * time.Millisecond
	k := Key{"ns", "app-1"}
	h.fd.logs.Append(k, "x")
	resp := h.do("GET", logPath+"?follow=true", nil) // answers once the build was read
	_ = h.builds.BuildV1().Builds("ns").Delete(context.Background(), "app-1", metav1.DeleteOptions{})
	if got := readAll(t, resp); got != "x\n" {
		t.Errorf("log = %q", got)
	}
}

func TestLogCursor(t *testing.T) {
	t0 := time.Unix(100, 0)
	l := func(sec int64, s string) Line { return Line{Time: t0.Add(time.Duration(sec) * time.Second), Text: s} }
	c := &logCursor{}
	if got := c.advance([]Line{l(0, "a"), l(1, "b"), l(1, "c")}); len(got) != 3 {
		t.Fatalf("first read: %v", got)
	}
	// Read again from since=t1: b, c are old; d (same second) and e are new.
	got := c.advance([]Line{l(1, "b"), l(1, "c"), l(1, "d"), l(2, "e")})
	if len(got) != 2 || got[0].Text != "d" || got[1].Text != "e" {
		t.Errorf("second read: %v", got)
	}
	got = c.advance([]Line{l(2, "e")})
	if len(got) != 0 {
		t.Errorf("third read: %v", got)
	}
}

func TestLogChaosCut(t *testing.T) {
	h := newHarness(t, storedBuild(buildv1.BuildPhaseComplete))
	k := Key{"ns", "app-1"}
	var full strings.Builder
	for i := range 40 {
		line := fmt.Sprintf("line %02d of the build log", i)
		h.fd.logs.Append(k, line)
		full.WriteString(line + "\n")
	}
	h.fd.logs.Close(k)
	h.fd.chaos.set(Chaos{LogCutRate: 1})
	cuts := 0
	for range 20 {
		resp := h.do("GET", logPath, nil)
		b, _ := io.ReadAll(resp.Body) // a broken connection ends with an error
		resp.Body.Close()
		if !strings.HasPrefix(full.String(), string(b)) {
			t.Fatalf("cut stream is not a prefix of the log: %q", b)
		}
		if len(b) < full.Len() {
			cuts++
		}
	}
	if cuts != 20 {
		t.Errorf("%d of 20 streams cut at rate 1", cuts)
	}
	h.fd.chaos.set(Chaos{})
	if got := readAll(t, h.do("GET", logPath, nil)); got != full.String() {
		t.Errorf("uncut log differs")
	}
}

// With UntimestampedErrors a clean cut ends with OpenShift's error text, and
// that text carries no timestamp although timestamps were asked for.
func TestLogWriterUntimestampedError(t *testing.T) {
	var out strings.Builder
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	lw := &logWriter{w: &out, flush: func() {}, timestamps: true, limit: -1,
		cut: &logCut{afterLines: 1, partial: 5, clean: true}, errText: "error while getting build logs, could not retrieve build pod ns/b-1-build : boom"}
	if !lw.write(Line{Time: at, Text: "first"}) {
		t.Fatal("the first line was cut")
	}
	if lw.write(Line{Time: at, Text: "second"}) {
		t.Fatal("the stream was not cut after one line")
	}
	want := at.Format(time.RFC3339Nano) + " first\nerror while getting build logs, could not retrieve build pod ns/b-1-build : boom\n"
	if out.String() != want || lw.aborted {
		t.Errorf("stream = %q (aborted %v), want %q", out.String(), lw.aborted, want)
	}
}
