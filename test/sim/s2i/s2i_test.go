package s2i

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

const builderRef = "registry.example/ns/builder:latest"

// writeTree creates files under dir: a key ending in / is a directory, a
// value starting with "-> " a symlink to the rest.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree lists dir's entries: "path" for files, "path/" for dirs,
// "path -> target" for symlinks.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+" -> "+l)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func builder(labels map[string]string, user string) Builder {
	return Builder{Image: builderRef, Labels: labels, User: user}
}

func imageLabels() map[string]string {
	return map[string]string{ScriptsURLLabel: "image:///usr/libexec/s2i"}
}

func generate(t *testing.T, r Request) (*Result, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ctx")
	res, err := Generate(context.Background(), r, out)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	df, err := os.ReadFile(res.Dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dockerfile != filepath.Join(out, "Dockerfile") {
		t.Errorf("Dockerfile at %s", res.Dockerfile)
	}
	return res, string(df), out
}

func TestDockerfileBasic(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"app.py": "print(1)\n"})
	res, df, out := generate(t, Request{
		Builder:   builder(imageLabels(), "1001"),
		SourceDir: src,
		Env:       []KV{{"OPENSHIFT_BUILD_NAME", "app-1"}, {"GREETING", "hello world"}},
		Labels:    []KV{{"io.openshift.build.commit.id", "abc"}},
	})
	want := `FROM registry.example/ns/builder:latest
LABEL "io.openshift.build.image"="registry.example/ns/builder:latest" \
      "io.openshift.s2i.build.image"="registry.example/ns/builder:latest" \
      "io.openshift.build.commit.id"="abc"
ENV OPENSHIFT_BUILD_NAME="app-1" \
    GREETING="hello world"
# Copying in source code
COPY --chown=1001:0 upload/src /tmp/src
USER 1001
# Assemble script sourced from builder image based on user input or image metadata.
# If this file does not exist in the image, the build will fail.
RUN /usr/libexec/s2i/assemble
# Run script sourced from builder image based on user input or image metadata.
# If this file does not exist in the image, the build will fail.
CMD /usr/libexec/s2i/run
`
	if df != want {
		t.Errorf("Dockerfile:\n%s\nwant:\n%s", df, want)
	}
	if res.User != "1001" || len(res.Warnings) != 0 {
		t.Errorf("user %q warnings %q", res.User, res.Warnings)
	}
	if got := listTree(t, filepath.Join(out, "upload")); !reflect.DeepEqual(got, []string{"scripts/", "src/", "src/app.py"}) {
		t.Errorf("upload tree %q", got)
	}
	wantScripts := []Script{
		{Name: Assemble, Origin: FromImage, Path: "/usr/libexec/s2i/assemble"},
		{Name: Run, Origin: FromImage, Path: "/usr/libexec/s2i/run"},
		{Name: SaveArtifacts, Origin: FromImage, Path: "/usr/libexec/s2i/save-artifacts"},
	}
	if !reflect.DeepEqual(res.Scripts, wantScripts) {
		t.Errorf("scripts %+v", res.Scripts)
	}
}

func TestDockerfileIncremental(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{".s2i/bin/save-artifacts": "#!/bin/sh\ntar -cf - deps\n", "app.py": ""})
	labels := imageLabels()
	labels[DestinationLabel] = "/opt/app-root"
	_, df, out := generate(t, Request{
		Builder:       builder(labels, "1001"),
		SourceDir:     src,
		PreviousImage: "registry.example/ns/app:latest",
	})
	want := `FROM registry.example/ns/app:latest as cached
# Copying in override save-artifacts script
COPY --chown=1001:0 upload/scripts/save-artifacts /opt/app-root/scripts/save-artifacts
USER 1001
RUN if [ -s /opt/app-root/scripts/save-artifacts ]; then /opt/app-root/scripts/save-artifacts > /tmp/artifacts.tar; else touch /tmp/artifacts.tar; fi
FROM registry.example/ns/builder:latest
LABEL "io.openshift.build.image"="registry.example/ns/builder:latest" \
      "io.openshift.s2i.build.image"="registry.example/ns/builder:latest" \
      "io.openshift.s2i.destination"="/opt/app-root"
COPY --chown=1001:0 --from=cached /tmp/artifacts.tar /tmp/artifacts.tar
# Copying in override assemble/run scripts
COPY --chown=1001:0 upload/scripts /opt/app-root/scripts
# Copying in source code
COPY --chown=1001:0 upload/src /opt/app-root/src
USER 1001
# Extract artifact content
RUN if [ -s /tmp/artifacts.tar ]; then mkdir -p /opt/app-root/artifacts; tar -xf /tmp/artifacts.tar -C /opt/app-root/artifacts; fi && \
    rm /tmp/artifacts.tar
# Assemble script sourced from builder image based on user input or image metadata.
# If this file does not exist in the image, the build will fail.
RUN /usr/libexec/s2i/assemble
# Run script sourced from builder image based on user input or image metadata.
# If this file does not exist in the image, the build will fail.
CMD /usr/libexec/s2i/run
`
	if df != want {
		t.Errorf("Dockerfile:\n%s\nwant:\n%s", df, want)
	}
	if got := listTree(t, filepath.Join(out, "upload")); !reflect.DeepEqual(got, []string{"scripts/", "scripts/save-artifacts", "src/", "src/.s2i/", "src/.s2i/bin/", "src/app.py"}) {
		t.Errorf("upload tree %q", got)
	}

	// The image's save-artifacts, run as the assemble user.
	_, df, _ = generate(t, Request{Builder: builder(imageLabels(), "1002"), PreviousImage: "prev:1"})
	for _, s := range []string{
		"FROM prev:1 as cached\n# Save-artifacts script sourced from builder image based on user input or image metadata.\nUSER 1002\n" +
			"RUN if [ -s /usr/libexec/s2i/save-artifacts ]; then /usr/libexec/s2i/save-artifacts > /tmp/artifacts.tar; else touch /tmp/artifacts.tar; fi\nFROM " + builderRef + "\n",
		"COPY --chown=1002:0 --from=cached /tmp/artifacts.tar /tmp/artifacts.tar\n# Copying in source code\n",
		"mkdir -p /tmp/artifacts; tar -xf /tmp/artifacts.tar -C /tmp/artifacts; fi",
	} {
		if !strings.Contains(df, s) {
			t.Errorf("Dockerfile lacks %q:\n%s", s, df)
		}
	}
}

// scriptServer serves the given scripts under /s2i/ and counts requests.
func scriptServer(t *testing.T, scripts map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := scripts[strings.TrimPrefix(r.URL.Path, "/s2i/")]
		if !ok || !strings.HasPrefix(r.URL.Path, "/s2i/") {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestScriptPriority(t *testing.T) {
	srv := scriptServer(t, map[string]string{"assemble": "#!/bin/sh\necho url-assemble\n", "run": "#!/bin/sh\necho url-run\n"})
	onlyRun := scriptServer(t, map[string]string{"run": "#!/bin/sh\necho url-run\n"})
	fileDir := t.TempDir()
	writeTree(t, fileDir, map[string]string{"assemble": "#!/bin/sh\necho file-assemble\n"})

	type want struct {
		assemble, run, save string // paths in the image
		origins             string // assemble/run/save-artifacts origins
		scripts             []string
		src                 []string // what is left under upload/src/.s2i (and .sti)
		content             map[string]string
		warn                []string
		noWarn              []string
		copyScripts         bool
		label               string // the io.openshift.s2i.scripts-url label written ("" none)
	}
	cases := []struct {
		name       string
		labels     map[string]string
		source     map[string]string
		scriptsURL string
		want       want
	}{{
		name:   "image label",
		labels: map[string]string{ScriptsURLLabel: "image:///opt/custom/s2i"},
		want: want{assemble: "/opt/custom/s2i/assemble", run: "/opt/custom/s2i/run", save: "/opt/custom/s2i/save-artifacts",
			origins: "image image image", scripts: []string{}},
	}, {
		name: "no label: /usr/libexec/s2i",
		want: want{assemble: "/usr/libexec/s2i/assemble", run: "/usr/libexec/s2i/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "image image image", scripts: []string{}, noWarn: []string{"deprecated"}},
	}, {
		name:   "deprecated label only: not read by OpenShift",
		labels: map[string]string{DeprecatedScriptsURLLabel: "image:///opt/old"},
		want: want{assemble: "/usr/libexec/s2i/assemble", run: "/usr/libexec/s2i/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "image image image", scripts: []string{}, warn: []string{"only the deprecated label io.s2i.scripts-url=image:///opt/old"}},
	}, {
		name:   "source .s2i/bin beats the image",
		labels: imageLabels(),
		source: map[string]string{".s2i/bin/assemble": "#!/bin/sh\necho src-assemble\n", ".s2i/bin/helper": "x", ".s2i/environment": "A=1\n"},
		want: want{assemble: "/tmp/scripts/assemble", run: "/usr/libexec/s2i/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "source image image", scripts: []string{"assemble"}, copyScripts: true,
			src:     []string{".s2i/", ".s2i/bin/", ".s2i/bin/helper", ".s2i/environment"},
			content: map[string]string{"assemble": "#!/bin/sh\necho src-assemble\n"},
			warn:    []string{"Using S2I scripts from the source's .s2i/bin: assemble"}},
	}, {
		name:   "deprecated .sti/bin",
		labels: imageLabels(),
		source: map[string]string{".sti/bin/run": "#!/bin/sh\n"},
		want: want{assemble: "/usr/libexec/s2i/assemble", run: "/tmp/scripts/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "image source image", scripts: []string{"run"}, copyScripts: true, src: []string{".sti/", ".sti/bin/"},
			warn: []string{"DEPRECATED: Use .s2i/bin instead of .sti/bin"}},
	}, {
		name:       "scripts URL beats the source, per script",
		labels:     imageLabels(),
		scriptsURL: srv.URL + "/s2i",
		source:     map[string]string{".s2i/bin/assemble": "#!/bin/sh\necho src-assemble\n", ".s2i/bin/save-artifacts": "#!/bin/sh\n"},
		want: want{assemble: "/tmp/scripts/assemble", run: "/tmp/scripts/run", save: "/tmp/scripts/save-artifacts",
			origins: "url url source", scripts: []string{"assemble", "run", "save-artifacts"}, copyScripts: true,
			src:     []string{".s2i/", ".s2i/bin/", ".s2i/bin/assemble"},
			content: map[string]string{"assemble": "#!/bin/sh\necho url-assemble\n", "run": "#!/bin/sh\necho url-run\n"},
			warn: []string{"Using S2I scripts downloaded from " + srv.URL + "/s2i: assemble, run",
				"Using S2I scripts from the source's .s2i/bin: save-artifacts",
				`Could not download the S2I script "save-artifacts": failed to retrieve ` + srv.URL + "/s2i/save-artifacts, response code 404"},
			label: srv.URL + "/s2i"},
	}, {
		// OpenShift passes the image's label to s2i only without
		// sourceStrategy.scripts: a script the URL lacks is run from
		// /usr/libexec/s2i, whatever the label says.
		name:       "scripts URL lacking assemble: /usr/libexec/s2i, not the label",
		labels:     map[string]string{ScriptsURLLabel: "image:///opt/custom"},
		scriptsURL: onlyRun.URL + "/s2i/",
		want: want{assemble: "/usr/libexec/s2i/assemble", run: "/tmp/scripts/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "image url image", scripts: []string{"run"}, copyScripts: true,
			warn:  []string{`The S2I script "assemble" is neither at ` + onlyRun.URL + "/s2i/ nor in the source's .s2i/bin: using /usr/libexec/s2i/assemble from the builder image"},
			label: onlyRun.URL + "/s2i/"},
	}, {
		name:       "image:// scripts URL beats everything",
		labels:     imageLabels(),
		scriptsURL: "image:///opt/other",
		source:     map[string]string{".s2i/bin/assemble": "#!/bin/sh\n"},
		want: want{assemble: "/opt/other/assemble", run: "/opt/other/run", save: "/opt/other/save-artifacts",
			origins: "image image image", scripts: []string{}, src: []string{".s2i/", ".s2i/bin/", ".s2i/bin/assemble"},
			label: "image:///opt/other"},
	}, {
		name:       "file:// scripts URL",
		labels:     imageLabels(),
		scriptsURL: "file://" + fileDir,
		want: want{assemble: "/tmp/scripts/assemble", run: "/usr/libexec/s2i/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "url image image", scripts: []string{"assemble"}, copyScripts: true,
			content: map[string]string{"assemble": "#!/bin/sh\necho file-assemble\n"}, label: "file://" + fileDir},
	}, {
		name:   "downloadable label, the source still wins",
		labels: map[string]string{ScriptsURLLabel: srv.URL + "/s2i"},
		source: map[string]string{".s2i/bin/run": "#!/bin/sh\necho src-run\n"},
		want: want{assemble: "/tmp/scripts/assemble", run: "/tmp/scripts/run", save: "/usr/libexec/s2i/save-artifacts",
			origins: "url source image", scripts: []string{"assemble", "run"}, copyScripts: true, src: []string{".s2i/", ".s2i/bin/"},
			content: map[string]string{"assemble": "#!/bin/sh\necho url-assemble\n", "run": "#!/bin/sh\necho src-run\n"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tc.source)
			res, df, out := generate(t, Request{Builder: builder(tc.labels, "1001"), SourceDir: src, ScriptsURL: tc.scriptsURL})
			w := tc.want
			var origins []string
			for _, s := range res.Scripts {
				origins = append(origins, string(s.Origin))
			}
			if got := strings.Join(origins, " "); got != w.origins {
				t.Errorf("origins %q, want %q", got, w.origins)
			}
			if p := []string{res.Scripts[0].Path, res.Scripts[1].Path, res.Scripts[2].Path}; !reflect.DeepEqual(p, []string{w.assemble, w.run, w.save}) {
				t.Errorf("paths %q", p)
			}
			if !strings.Contains(df, "\nRUN "+w.assemble+"\n") || !strings.HasSuffix(df, "\nCMD "+w.run+"\n") {
				t.Errorf("Dockerfile does not run %s / %s:\n%s", w.assemble, w.run, df)
			}
			if got := strings.Contains(df, "COPY --chown=1001:0 upload/scripts /tmp/scripts\n"); got != w.copyScripts {
				t.Errorf("COPY upload/scripts: %v, want %v:\n%s", got, w.copyScripts, df)
			}
			var scripts []string
			ents, _ := os.ReadDir(filepath.Join(out, "upload", "scripts"))
			for _, e := range ents {
				scripts = append(scripts, e.Name())
				fi, _ := os.Stat(filepath.Join(out, "upload", "scripts", e.Name()))
				if fi.Mode().Perm() != 0o755 {
					t.Errorf("%s mode %v", e.Name(), fi.Mode())
				}
			}
			if scripts == nil {
				scripts = []string{}
			}
			if !reflect.DeepEqual(scripts, w.scripts) {
				t.Errorf("upload/scripts %q, want %q", scripts, w.scripts)
			}
			var left []string
			for _, e := range listTree(t, filepath.Join(out, "upload", "src")) {
				if strings.HasPrefix(e, ".s2i") || strings.HasPrefix(e, ".sti") {
					left = append(left, e)
				}
			}
			if !reflect.DeepEqual(left, w.src) {
				t.Errorf("upload/src keeps %q, want %q", left, w.src)
			}
			for name, c := range w.content {
				if b, _ := os.ReadFile(filepath.Join(out, "upload", "scripts", name)); string(b) != c {
					t.Errorf("%s = %q, want %q", name, b, c)
				}
			}
			all := strings.Join(res.Warnings, "\n")
			for _, s := range w.warn {
				if !strings.Contains(all, s) {
					t.Errorf("warnings lack %q:\n%s", s, all)
				}
			}
			for _, s := range w.noWarn {
				if strings.Contains(all, s) {
					t.Errorf("warnings have %q:\n%s", s, all)
				}
			}
			hasLabel := strings.Contains(df, `"io.openshift.s2i.scripts-url"=`)
			if want := `"io.openshift.s2i.scripts-url"="` + w.label + `"`; (w.label == "") == hasLabel || (hasLabel && !strings.Contains(df, want)) {
				t.Errorf("scripts-url label: want %q:\n%s", w.label, df)
			}
		})
	}
}

func TestScriptErrors(t *testing.T) {
	none := scriptServer(t, nil)
	cases := []struct {
		name, url, reason, msg string
		source                 map[string]string
		fetch                  func(context.Context, string) ([]byte, error)
	}{
		{name: "nothing at the URL", url: none.URL + "/s2i", reason: ReasonScriptsFetchFailed,
			msg: "could not download any scripts from URL " + none.URL + "/s2i"},
		{name: "fetch error", url: "https://scripts.example/s2i", reason: ReasonScriptsFetchFailed,
			msg:   "could not download any scripts from URL https://scripts.example/s2i",
			fetch: func(context.Context, string) ([]byte, error) { return nil, errors.New("dial tcp: no route") }},
		{name: "no handler", url: "ftp://scripts.example/s2i", reason: ReasonScriptsFetchFailed,
			msg: "could not download any scripts from URL ftp://scripts.example/s2i"},
		{name: "missing file dir", url: "file:///nonexistent/s2i", reason: ReasonScriptsFetchFailed,
			msg: "could not download any scripts from URL file:///nonexistent/s2i"},
		{name: "assemble is a directory", source: map[string]string{".s2i/bin/assemble/": ""}, reason: ReasonInstallScriptsFailed,
			msg: "the source's .s2i/bin/assemble is a directory, not a script"},
		{name: "relative image dir", url: "image://usr/libexec", reason: ReasonInstallScriptsFailed,
			msg: `scripts URL "image://usr/libexec" names no absolute directory in the image`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tc.source)
			_, err := Generate(context.Background(), Request{Builder: builder(imageLabels(), "1001"), SourceDir: src, ScriptsURL: tc.url, Fetch: tc.fetch},
				filepath.Join(t.TempDir(), "out"))
			var se *Error
			if !errors.As(err, &se) || se.Reason != tc.reason || err.Error() != tc.msg || se.Message == "" {
				t.Fatalf("err = %v (%#v), want %s: %s", err, se, tc.reason, tc.msg)
			}
		})
	}

	// Fetch gets the context; the warnings name each failure.
	var got []string
	res, err := Generate(context.Background(), Request{Builder: builder(imageLabels(), "1001"), ScriptsURL: "http://h/s",
		Fetch: func(ctx context.Context, u string) ([]byte, error) {
			got = append(got, u)
			if strings.HasSuffix(u, "/run") {
				return []byte("#!/bin/sh\n"), nil
			}
			return nil, errors.New("boom")
		}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"http://h/s/assemble", "http://h/s/run", "http://h/s/save-artifacts"}) {
		t.Errorf("fetched %q", got)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, `Could not download the S2I script "assemble": boom`) ||
		!strings.Contains(w, `The S2I script "assemble" is neither at http://h/s nor in the source's .s2i/bin`) ||
		strings.Contains(w, `"save-artifacts" is neither`) {
		t.Errorf("warnings:\n%s", w)
	}
}

func TestEnvironmentOrderAndQuoting(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{".s2i/environment": "# a comment\n\nAPP_MODULE=app:app\n  SPACED  =  trimmed value  \nGREETING=from file\nnot a pair\nBAD NAME=x\n=novalue\nURL=http://x/?a=b\n"})
	res, df, _ := generate(t, Request{
		Builder:   builder(imageLabels(), "1001"),
		SourceDir: src,
		Env: []KV{
			{"OPENSHIFT_BUILD_NAME", "app-1"},
			{"GREETING", "from strategy"},
			{"TRICKY", `say "hi" to $HOME \ ${X} $(id)` + "\nline2"},
			{"EMPTY", ""},
		},
	})
	want := `ENV APP_MODULE="app:app" \
    SPACED="trimmed value" \
    GREETING="from file" \
    URL="http://x/?a=b" \
    OPENSHIFT_BUILD_NAME="app-1" \
    GREETING="from strategy" \
    TRICKY="say \"hi\" to \$HOME \\ \${X} \$(id)\nline2" \
    EMPTY=""
`
	if !strings.Contains(df, "\n"+want) {
		t.Errorf("Dockerfile:\n%s\nwant ENV:\n%s", df, want)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, `Ignoring line 7 of .s2i/environment: "BAD NAME=x"`) || strings.Contains(w, "not a pair") {
		t.Errorf("warnings:\n%s", w)
	}

	// Labels: quoted the same way, request labels override generated ones.
	_, df, _ = generate(t, Request{
		Builder: builder(imageLabels(), "1001"),
		Labels:  []KV{{"io.k8s.display-name", `my "app" $NAME`}, {S2IBuildImageLabel, "override"}, {"multi", "a\nb"}},
	})
	wantLabel := `LABEL "io.openshift.build.image"="registry.example/ns/builder:latest" \
      "io.openshift.s2i.build.image"="override" \
      "io.k8s.display-name"="my \"app\" \$NAME" \
      "multi"="a\nb"
`
	if !strings.Contains(df, wantLabel) || strings.Contains(df, "ENV") {
		t.Errorf("Dockerfile:\n%s\nwant:\n%s", df, wantLabel)
	}

	for _, bad := range []KV{{"A B", "x"}, {"", "x"}, {"A", "x\x00"}} {
		_, err := Generate(context.Background(), Request{Builder: builder(nil, "1001"), Env: []KV{bad}}, t.TempDir())
		var se *Error
		if !errors.As(err, &se) || se.Reason != ReasonDockerfileCreate {
			t.Errorf("env %q: err %v", bad, err)
		}
	}
}

func TestAssembleUser(t *testing.T) {
	cases := []struct {
		user        string
		label       *string
		rootAllowed bool
		want        string // "" → forbidden
		badName     string // the name the error quotes
	}{
		{user: "", want: "1001"},
		{user: "1001", want: "1001"},
		{user: "1001:0", want: "1001"},
		{user: " 1002 : 1002", want: "1002"},
		{user: "root", badName: "root"},
		{user: "0", badName: "0"},
		{user: "0:0", badName: "0"},
		{user: "default", badName: "default"},
		{user: "-1", badName: "-1"},
		{user: "root", label: ptr("1003"), want: "1003"},
		{user: "1001", label: ptr("root"), badName: "root"},
		{user: "1001", label: ptr(""), want: "1001"},
		{user: "default", label: ptr(""), want: "1001"},
		{user: "root", rootAllowed: true, want: "root"},
		{user: "default", rootAllowed: true, want: "default"},
		{user: "0", rootAllowed: true, want: "0"},
		{user: "a b", rootAllowed: true},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%q/label=%v/root=%v", tc.user, tc.label != nil, tc.rootAllowed)
		t.Run(name, func(t *testing.T) {
			labels := imageLabels()
			if tc.label != nil {
				labels[AssembleUserLabel] = *tc.label
			}
			out := filepath.Join(t.TempDir(), "out")
			res, err := Generate(context.Background(), Request{Builder: builder(labels, tc.user), RootAllowed: tc.rootAllowed, PreviousImage: "prev"}, out)
			if tc.want == "" {
				var se *Error
				if !errors.As(err, &se) || se.Reason != ReasonAssembleUserForbidden || se.Message != "Assemble user for S2I build is forbidden." {
					t.Fatalf("err = %v", err)
				}
				if tc.badName != "" {
					if want := fmt.Sprintf("image %q must specify a user that is numeric and within the range of allowed users", tc.badName); err.Error() != want {
						t.Errorf("err %q, want %q", err, want)
					}
				}
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("output written despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			df, _ := os.ReadFile(res.Dockerfile)
			if res.User != tc.want || !strings.Contains(string(df), "COPY --chown="+tc.want+":0 upload/src /tmp/src\n") {
				t.Errorf("user %q:\n%s", res.User, df)
			}
			users := strings.Count(string(df), "\nUSER "+tc.want+"\n")
			if wantUsers := map[bool]int{true: 0, false: 2}[tc.want == "root"]; users != wantUsers || strings.Contains(string(df), "USER root") {
				t.Errorf("%d USER lines, want %d:\n%s", users, wantUsers, df)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestDestination(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{".s2i/bin/assemble": "#!/bin/sh\n"})
	labels := imageLabels()
	labels[DestinationLabel] = "/opt/my app"
	labels[ScriptsURLLabel] = "image:///usr/lib exec/s2i"
	_, df, _ := generate(t, Request{Builder: builder(labels, "1001"), SourceDir: src, PreviousImage: "prev"})
	for _, s := range []string{
		`COPY --chown=1001:0 ["upload/scripts", "/opt/my app/scripts"]` + "\n",
		`COPY --chown=1001:0 ["upload/src", "/opt/my app/src"]` + "\n",
		`RUN if [ -s '/usr/lib exec/s2i/save-artifacts' ]; then '/usr/lib exec/s2i/save-artifacts' > /tmp/artifacts.tar; else touch /tmp/artifacts.tar; fi` + "\n",
		`mkdir -p '/opt/my app/artifacts'; tar -xf /tmp/artifacts.tar -C '/opt/my app/artifacts'; fi`,
		"RUN '/opt/my app/scripts/assemble'\n",
		"CMD '/usr/lib exec/s2i/run'\n",
		`"io.openshift.s2i.destination"="/opt/my app"`,
	} {
		if !strings.Contains(df, s) {
			t.Errorf("Dockerfile lacks %q:\n%s", s, df)
		}
	}
	for _, bad := range []string{"/opt/$HOME", `/opt/a"b`, "/opt/a\nb", `/opt/a\`, "/opt/it's"} {
		l := imageLabels()
		l[DestinationLabel] = bad
		_, err := Generate(context.Background(), Request{Builder: builder(l, "1001")}, t.TempDir())
		var se *Error
		if !errors.As(err, &se) || se.Reason != ReasonDockerfileCreate {
			t.Errorf("destination %q: err %v", bad, err)
		}
	}
	for _, bad := range []string{"", "a b", "x\ny"} {
		b := builder(nil, "1001")
		b.Image = bad
		if _, err := Generate(context.Background(), Request{Builder: b}, t.TempDir()); err == nil {
			t.Errorf("image %q accepted", bad)
		}
	}
}

func TestSourceCopy(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "host file", "dir/inner": "x"})
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"app/main.go":     "package main\n",
		"app/run.sh":      "#!/bin/sh\n",
		"link-file":       "-> " + filepath.Join(outside, "secret"),
		"link-dir":        "-> " + filepath.Join(outside, "dir"),
		"app/rel":         "-> ../README",
		"dangling":        "-> does/not/exist",
		"README":          "hi",
		"empty/":          "",
		"has space/f g.t": "x",
	})
	if err := os.Chmod(filepath.Join(src, "app", "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "README"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "app"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, out := generate(t, Request{Builder: builder(imageLabels(), "1001"), SourceDir: src})
	dst := filepath.Join(out, "upload", "src")
	want := []string{
		"README", "app/", "app/main.go", "app/rel -> ../README", "app/run.sh",
		"dangling -> does/not/exist", "empty/", "has space/", "has space/f g.t",
		"link-dir -> " + filepath.Join(outside, "dir"), "link-file -> " + filepath.Join(outside, "secret"),
	}
	if got := listTree(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("upload/src:\n%q\nwant\n%q", got, want)
	}
	for p, m := range map[string]fs.FileMode{"app/run.sh": 0o755, "README": 0o600, "app/main.go": 0o644, "app": 0o750 | fs.ModeDir} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil || fi.Mode() != m {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode(), m, err)
		}
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "Skipping fifo: not a regular file") {
		t.Errorf("warnings:\n%s", w)
	}

	// .git is copied when the source has it, and only then.
	writeTree(t, src, map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".git/objects/": ""})
	_, _, out = generate(t, Request{Builder: builder(imageLabels(), "1001"), SourceDir: src})
	if _, err := os.Stat(filepath.Join(out, "upload", "src", ".git", "HEAD")); err != nil {
		t.Errorf(".git not copied: %v", err)
	}
	clean := t.TempDir()
	writeTree(t, clean, map[string]string{"a": "b"})
	_, _, out = generate(t, Request{Builder: builder(imageLabels(), "1001"), SourceDir: clean})
	if got := listTree(t, filepath.Join(out, "upload", "src")); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("upload/src %q", got)
	}

	// The source directory may itself be reached through a symlink.
	via := filepath.Join(t.TempDir(), "via")
	if err := os.Symlink(clean, via); err != nil {
		t.Fatal(err)
	}
	_, _, out = generate(t, Request{Builder: builder(imageLabels(), "1001"), SourceDir: via})
	if got := listTree(t, filepath.Join(out, "upload", "src")); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("upload/src via a symlink %q", got)
	}
}

func TestS2IIgnore(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		".s2iignore": "# comment\n*.log\n!keep.log\ntmp\n\n../outside\n.s2i\n",
		"a.log":      "", "keep.log": "", "main.c": "", "tmp/x": "", "sub/b.log": "",
		".s2i/bin/assemble": "#!/bin/sh\n", ".s2i/environment": "A=1\n",
	})
	_, df, out := generate(t, Request{Builder: builder(imageLabels(), "1001"), SourceDir: src})
	want := []string{".s2iignore", "keep.log", "main.c", "sub/", "sub/b.log"}
	if got := listTree(t, filepath.Join(out, "upload", "src")); !reflect.DeepEqual(got, want) {
		t.Errorf("upload/src %q, want %q", got, want)
	}
	// An ignored .s2i takes its scripts and environment with it, as in s2i.
	if strings.Contains(df, "ENV") || !strings.Contains(df, "RUN /usr/libexec/s2i/assemble") {
		t.Errorf("Dockerfile:\n%s", df)
	}
}

func TestOutputDirChecks(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a": "b"})
	_, err := Generate(context.Background(), Request{Builder: builder(nil, "1001"), SourceDir: src}, filepath.Join(src, "build"))
	var se *Error
	if !errors.As(err, &se) || se.Reason != ReasonFetchSourceFailed || !strings.Contains(err.Error(), "recursive copy requested") {
		t.Errorf("out inside source: %v", err)
	}
	full := t.TempDir()
	writeTree(t, full, map[string]string{"x": ""})
	if _, err := Generate(context.Background(), Request{Builder: builder(nil, "1001")}, full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty out: %v", err)
	}
	if _, err := Generate(context.Background(), Request{Builder: builder(nil, "1001"), SourceDir: filepath.Join(src, "a")}, t.TempDir()); err == nil {
		t.Errorf("a file as the source was accepted")
	}
	// No source: an empty upload/src.
	res, err := Generate(context.Background(), Request{Builder: builder(nil, "")}, filepath.Join(t.TempDir(), "o"))
	if err != nil || res.User != "1001" {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, Request{Builder: builder(nil, "1001")}, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}
