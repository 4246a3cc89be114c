package sim

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	buildv1 "github.com/openshift/api/build/v1"
)

func TestParseDockerfile(t *testing.T) {
	df, err := parseDockerfile([]byte(`# escape=\
# syntax=docker/dockerfile:1
FROM base AS b
# a comment
RUN apt-get install \
    # a comment inside
    curl \

    jq
COPY --from=b --chown=1:2 ["a b", "/dst/"]
CMD ["run", "--x"]
ENTRYPOINT exec thing
RUN <<EOF
echo hi
FROM not-an-instruction
EOF
label a=b
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range df.inst {
		got = append(got, in.String())
	}
	want := []string{
		"FROM base AS b",
		"RUN apt-get install     curl     jq",
		`COPY --from=b --chown=1:2 ["a b", "/dst/"]`,
		`CMD ["run", "--x"]`,
		"ENTRYPOINT exec thing",
		"RUN <<EOF",
		"LABEL a=b",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("instructions:\n%q\nwant\n%q", got, want)
	}
	if c := df.inst[2]; !c.IsJSON || !reflect.DeepEqual(c.JSON, []string{"a b", "/dst/"}) || !reflect.DeepEqual(c.Flags, []string{"--from=b", "--chown=1:2"}) {
		t.Errorf("COPY: %+v", c)
	}
	if r := df.inst[5]; len(r.Heredocs) != 1 || r.Heredocs[0] != "echo hi\nFROM not-an-instruction\n" {
		t.Errorf("heredoc: %q", r.Heredocs)
	}
	if df.inst[1].Line != 5 {
		t.Errorf("RUN line %d", df.inst[1].Line)
	}

	bt, err := parseDockerfile([]byte("# escape=`\nFROM x\nRUN a `\n b\n"))
	if err != nil || len(bt.inst) != 2 || bt.inst[1].Args != "a  b" {
		t.Fatalf("backtick escape: %+v %v", bt, err)
	}
}

func TestLexer(t *testing.T) {
	env := map[string]string{"A": "alpha", "E": "", "SP": "x y"}
	lx := lexer{escape: '\\', lookup: func(n string) (string, bool) { v, ok := env[n]; return v, ok }}
	for in, want := range map[string][]string{
		`$A ${A}b`:                      {"alpha", "alphab"},
		`"$A x" 'no $A'`:                {"alpha x", "no $A"},
		`\$A \\`:                        {"$A", `\`},
		`${E:-def} ${E-def} ${U-def}`:   {"def", "", "def"},
		`${A:+set} ${U:+set}x ${E+set}`: {"set", "x", "set"},
		`$SP`:                           {"x y"},
		`a"b c"d`:                       {"ab cd"},
		`""`:                            {""},
		`"q\"uo\te"`:                    {`q"uo\te`},
		`${A:-${SP}}z $1 $ end`:         {"alphaz", "", "$", "end"},
		`a=${U:-x y}`:                   {"a=x y"},
	} {
		got, err := lx.words(in)
		if err != nil {
			t.Errorf("words(%s): %v", in, err)
			continue
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("words(%s) = %q, want %q", in, got, want)
		}
	}
	if w, _ := lx.word(`  $A   "b"  `); w != "  alpha   b  " {
		t.Errorf("word: %q", w)
	}
	for _, bad := range []string{`'open`, `"open`, `${A`, `${U:?must be set}`, `${}`} {
		if _, err := lx.words(bad); err == nil {
			t.Errorf("words(%s): no error", bad)
		}
	}
}

func TestDockerignore(t *testing.T) {
	di, err := parseDockerignore([]byte("# comment\n.git\n*.md\n!README.md\n/build/\n**/*.tmp\ndocs/**\n!docs/keep\n"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		".git": true, ".git/config": true, "x.md": true, "README.md": false, "sub/x.md": false,
		"build": true, "build/out": true, "a/b/c.tmp": true, "c.tmp": true, "docs/a": true,
		"docs/keep": false, "main.go": false,
	} {
		if got := di.excluded(p); got != want {
			t.Errorf("excluded(%s) = %v, want %v", p, got, want)
		}
	}
}

// writeTree writes files (name → content; a trailing / makes a directory).
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
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// imageFiles lists the flattened filesystem: path → content ("<dir>",
// "-> target" for links), with uid:gid for regular files in owners.
func imageFiles(t *testing.T, img v1.Image) (map[string]string, map[string]string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files, owners := map[string]string{}, map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, owners
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeDir:
			files[name] = "<dir>"
		case tar.TypeSymlink:
			files[name] = "-> " + h.Linkname
		default:
			b, _ := io.ReadAll(tr)
			files[name] = string(b)
		}
		owners[name] = strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid)
	}
}

type testBuild struct {
	reg  string
	dir  string
	logs []string
}

func (tb *testBuild) run(t *testing.T, dockerfile string, mod func(*dockerBuildOptions)) (v1.Image, error) {
	t.Helper()
	if dockerfile != "" {
		writeTree(t, tb.dir, map[string]string{"Dockerfile": dockerfile})
	}
	tb.logs = nil
	o := dockerBuildOptions{
		ContextDir:     tb.dir,
		DockerfilePath: "Dockerfile",
		WorkDir:        t.TempDir(),
		Log:            func(s string) { tb.logs = append(tb.logs, s) },
		Now:            time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Pull: func(ctx context.Context, image string) (v1.Image, error) {
			return pullImage(ctx, tb.reg, image)
		},
	}
	if mod != nil {
		mod(&o)
	}
	return runDockerBuild(context.Background(), o)
}

func (tb *testBuild) log() string { return strings.Join(tb.logs, "\n") }

func TestDockerBuildMultiStage(t *testing.T) {
	tb := &testBuild{reg: seededRegistry(t), dir: t.TempDir()}
	writeTree(t, tb.dir, map[string]string{
		"main.go":       "package main\n",
		"go.mod":        "module x\n",
		"README.md":     "readme",
		"scripts/a.sh":  "#!/bin/sh\n",
		"secret.key":    "nope",
		".dockerignore": "*.key\n",
	})
	img, err := tb.run(t, `
ARG REG
ARG BUILDER=${REG}/sim/golang-builder:latest
FROM ${BUILDER} AS builder
ARG GO_LDFLAGS="-s -w"
ARG VERSION=dev
ENV APP_VERSION=${VERSION} LDFLAGS="${GO_LDFLAGS}" \
    OLD=$APP_VERSION
WORKDIR /opt/app-root/src
COPY --chown=1001:0 . .
RUN CGO_ENABLED=0 go build -ldflags "${GO_LDFLAGS}" -o /tmp/app .

FROM scratch AS final
ARG VERSION
ARG UNSET
COPY --from=builder /opt/app-root/src/main.go /src/
COPY --from=builder /tmp/app /app
COPY --chmod=0700 scripts/ /scripts
LABEL org.example.version="${VERSION}" "org.example.unset"=${UNSET:-none} empty.key=
LABEL legacy value with spaces
ENV PATH=/ \
    GREETING="hello world"
EXPOSE 8080 9000-9001/udp
USER 65532:65532
WORKDIR app
ENTRYPOINT ["/app"]
CMD --port 8080
STOPSIGNAL SIGTERM
VOLUME /data
`, func(o *dockerBuildOptions) {
		o.BuildArgs = []kv{{"REG", tb.reg}, {"VERSION", "1.2"}, {"NOT_USED", "x"}}
		o.StrategyEnv = []kv{{"BUILD_ENV", "from-strategy"}}
		o.BuildInfoEnv = []kv{{"OPENSHIFT_BUILD_NAME", "app-1"}}
		o.Labels = []kv{{"io.openshift.build.name", "app-1"}, {"org.example.version", "overridden"}}
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, tb.log())
	}
	log := tb.log()
	for _, want := range []string{
		"[1/2] STEP 1/8: FROM ${BUILDER} AS builder",
		`[1/2] STEP 2/8: ENV "BUILD_ENV"="from-strategy"`,
		"Trying to pull " + tb.reg + "/sim/golang-builder:latest...",
		"RUN CGO_ENABLED=0 go build -ldflags \"${GO_LDFLAGS}\" -o /tmp/app .: not executed by the simulator",
		"[2/2] STEP 1/19: FROM scratch AS final",
		`/tmp/app does not exist in stage "builder" because its RUN instructions were not executed`,
		`[2/2] STEP 19/19: LABEL "io.openshift.build.name"="app-1" "org.example.version"="overridden"`,
		"[Warning] one or more build args were not consumed: [NOT_USED]",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	wantLabels := map[string]string{
		"org.example.version": "overridden", "org.example.unset": "none", "empty.key": "",
		"legacy": "value with spaces", "io.openshift.build.name": "app-1",
	}
	if !reflect.DeepEqual(c.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", c.Labels, wantLabels)
	}
	if !reflect.DeepEqual(c.Env, []string{"BUILD_ENV=from-strategy", "PATH=/", "GREETING=hello world", "OPENSHIFT_BUILD_NAME=app-1"}) {
		t.Errorf("env %q", c.Env)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/app"}) || !reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "--port 8080"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	ports := make([]string, 0)
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	if strings.Join(ports, ",") != "8080/tcp,9000/udp,9001/udp" {
		t.Errorf("ports %v", ports)
	}
	if c.User != "65532:65532" || c.WorkingDir != "/app" || c.StopSignal != "SIGTERM" {
		t.Errorf("user %q workdir %q stopsignal %q", c.User, c.WorkingDir, c.StopSignal)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	layers, _ := img.Layers()
	if len(layers) != 3 {
		t.Errorf("%d layers, want 3 (one per COPY)", len(layers))
	}
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != 3 || len(cf.History) != 18 {
		t.Errorf("history: %d entries, %d with layers", len(cf.History), nonEmpty)
	}

	files, _ := imageFiles(t, img)
	if files["src/main.go"] != "package main\n" {
		t.Errorf("src/main.go = %q", files["src/main.go"])
	}
	if !strings.Contains(files["app"], "placeholder") {
		t.Errorf("app = %q", files["app"])
	}
	if files["scripts/a.sh"] != "#!/bin/sh\n" || files["scripts"] != "<dir>" {
		t.Errorf("scripts: %q", files)
	}
	if _, ok := files["opt/app-root/src/main.go"]; ok {
		t.Error("the builder stage leaked into the final image")
	}

	// The builder stage itself: the context at WORKDIR owned by 1001:0,
	// .dockerignore applied, ENV expanded with the build args.
	b := &testBuild{reg: tb.reg, dir: tb.dir}
	bimg, err := b.run(t, "", func(o *dockerBuildOptions) {
		o.BuildArgs = []kv{{"REG", tb.reg}, {"VERSION", "1.2"}}
		o.DockerfilePath = "Dockerfile.builder"
		writeTree(t, tb.dir, map[string]string{"Dockerfile.builder": `ARG REG
FROM ${REG}/sim/golang-builder:latest
ARG GO_LDFLAGS="-s -w"
ARG VERSION=dev
ENV APP_VERSION=${VERSION} LDFLAGS="${GO_LDFLAGS}" OLD=${APP_VERSION:-unset}
WORKDIR /opt/app-root/src
COPY --chown=default:root . .
`})
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, b.log())
	}
	bcf, _ := bimg.ConfigFile()
	env := strings.Join(bcf.Config.Env, "|")
	for _, want := range []string{"APP_VERSION=1.2", "LDFLAGS=-s -w", "OLD=unset", "GO_VERSION=1.26"} {
		if !strings.Contains(env, want) {
			t.Errorf("builder env lacks %s: %s", want, env)
		}
	}
	bfiles, bowners := imageFiles(t, bimg)
	if bfiles["opt/app-root/src/main.go"] != "package main\n" || bowners["opt/app-root/src/main.go"] != "1001:0" {
		t.Errorf("main.go: %q owned %s", bfiles["opt/app-root/src/main.go"], bowners["opt/app-root/src/main.go"])
	}
	if _, ok := bfiles["opt/app-root/src/secret.key"]; ok {
		t.Error(".dockerignore'd secret.key copied")
	}
	if bfiles["etc/passwd"] == "" {
		t.Error("base layers missing")
	}
}

func TestDockerBuildFromOverrideAndCopyRules(t *testing.T) {
	tb := &testBuild{reg: seededRegistry(t), dir: t.TempDir()}
	writeTree(t, tb.dir, map[string]string{
		"a.txt": "a", "b.txt": "b", "dir/x": "x", "dir/sub/y": "y", "app.tar.gz": "",
	})
	img, err := tb.run(t, `FROM scratch AS first
FROM scratch
COPY *.txt /multi/
COPY a.txt /renamed
COPY dir /copied
COPY ["dir/sub", "/json dest/"]
ENTRYPOINT run.sh
`, func(o *dockerBuildOptions) { o.FromOverride = tb.reg + "/" + BaseImage })
	if err != nil {
		t.Fatalf("%v\n%s", err, tb.log())
	}
	if !strings.Contains(tb.log(), "Replaced Dockerfile FROM image scratch") {
		t.Errorf("log:\n%s", tb.log())
	}
	files, _ := imageFiles(t, img)
	for p, want := range map[string]string{
		"multi/a.txt": "a", "multi/b.txt": "b", "renamed": "a", "copied/x": "x", "copied/sub/y": "y",
		"json dest/y": "y", "etc/group": files["etc/group"],
	} {
		if files[p] != want || want == "" {
			t.Errorf("%s = %q, want %q", p, files[p], want)
		}
	}
	cf, _ := img.ConfigFile()
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/bin/sh", "-c", "run.sh"}) || cf.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q (the base's CMD must be reset)", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if layers, _ := img.Layers(); len(layers) != 5 {
		t.Errorf("%d layers, want base + 4", len(layers))
	}

	// COPY of a file into an existing directory of the base without a slash
	img, err = tb.run(t, "FROM "+tb.reg+"/"+BaseImage+"\nCOPY a.txt /tmp\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := imageFiles(t, img); files["tmp/a.txt"] != "a" {
		t.Errorf("COPY a.txt /tmp did not copy into the directory")
	}
}

func TestDockerBuildFailures(t *testing.T) {
	tb := &testBuild{reg: seededRegistry(t), dir: t.TempDir()}
	writeTree(t, tb.dir, map[string]string{"a.txt": "a", "b.txt": "b"})
	for _, tc := range []struct {
		name, dockerfile string
		reason           buildv1.StatusReason
		log              string
	}{
		{"missing file", "FROM scratch\nCOPY nope /x\n", buildv1.StatusReasonDockerBuildFailed,
			`error: build error: building at STEP "COPY nope /x": file not found in build context or excluded by .dockerignore: stat nope: file does not exist`},
		{"unknown instruction", "FROM scratch\nFROBNICATE x\n", buildv1.StatusReasonDockerBuildFailed, "unknown instruction: FROBNICATE"},
		{"no FROM", "COPY a.txt /\n", buildv1.StatusReasonDockerBuildFailed, "no FROM instruction"},
		{"instruction before FROM", "ENV A=b\nFROM scratch\n", buildv1.StatusReasonDockerBuildFailed, "no build stage in current context"},
		{"missing image", "FROM " + tb.reg + "/nope/nope:1\n", buildv1.StatusReasonPullBuilderImageFailed, "error: build error: failed to pull image"},
		{"outside context", "FROM scratch\nCOPY ../x /x\n", buildv1.StatusReasonDockerBuildFailed, "forbidden path outside the build context"},
		{"multiple to file", "FROM scratch\nCOPY a.txt b.txt /dest\n", buildv1.StatusReasonDockerBuildFailed, "the destination must be a directory"},
		{"ADD url", "FROM scratch\nADD https://example.com/x /x\n", buildv1.StatusReasonDockerBuildFailed, "not supported by the simulator"},
		{"bad EXPOSE", "FROM scratch\nEXPOSE http\n", buildv1.StatusReasonDockerBuildFailed, "invalid containerPort: http"},
		{"bad SHELL", "FROM scratch\nSHELL /bin/bash\n", buildv1.StatusReasonDockerBuildFailed, "SHELL requires the arguments to be in JSON form"},
		{"missing in stage without RUN", "FROM scratch AS a\nFROM scratch\nCOPY --from=a /nope /x\n", buildv1.StatusReasonDockerBuildFailed, "file not found in stage or image a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tb.run(t, tc.dockerfile, nil)
			var bf *buildFailure
			if !errors.As(err, &bf) || bf.Reason != tc.reason {
				t.Fatalf("err %v, want reason %s", err, tc.reason)
			}
			if !strings.Contains(tb.log(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, tb.log())
			}
		})
	}
	// no Dockerfile at all
	_, err := tb.run(t, "", func(o *dockerBuildOptions) { o.DockerfilePath = "missing/Dockerfile" })
	var bf *buildFailure
	if !errors.As(err, &bf) || bf.Reason != buildv1.StatusReasonDockerBuildFailed || !strings.Contains(tb.log(), `failed to read Dockerfile "missing/Dockerfile"`) {
		t.Errorf("missing Dockerfile: %v\n%s", err, tb.log())
	}
}

func TestDockerBuildADDArchiveAndHealthcheck(t *testing.T) {
	tb := &testBuild{reg: seededRegistry(t), dir: t.TempDir()}
	// an archive to ADD
	src := t.TempDir()
	writeTree(t, src, map[string]string{"in/archive.txt": "from the archive"})
	l, err := buildLayer(t.TempDir(), []layerEntry{{Name: "in/archive.txt", Type: tar.TypeReg, Mode: 0o644, Data: []byte("from the archive")}}, "")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := l.Compressed()
	data, _ := io.ReadAll(rc)
	rc.Close()
	writeTree(t, tb.dir, map[string]string{"a.tgz": string(data)})
	img, err := tb.run(t, `FROM scratch
ADD a.tgz /opt/
HEALTHCHECK --interval=5s --retries=3 CMD ["/bin/check"]
ONBUILD RUN echo later
MAINTAINER someone
`, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, tb.log())
	}
	files, _ := imageFiles(t, img)
	if files["opt/in/archive.txt"] != "from the archive" {
		t.Errorf("ADD did not extract: %v", files)
	}
	cf, _ := img.ConfigFile()
	hc := cf.Config.Healthcheck
	if hc == nil || !reflect.DeepEqual(hc.Test, []string{"CMD", "/bin/check"}) || hc.Interval != 5*time.Second || hc.Retries != 3 {
		t.Errorf("healthcheck %+v", hc)
	}
	if !reflect.DeepEqual(cf.Config.OnBuild, []string{"RUN echo later"}) || cf.Author != "someone" {
		t.Errorf("onbuild %q author %q", cf.Config.OnBuild, cf.Author)
	}
}

// TestDockerBuildRepoSamples builds the Dockerfiles the sandbox's git
// repositories and the samples carry, with the seeded mirrors.
func TestDockerBuildRepoSamples(t *testing.T) {
	reg := seededRegistry(t)
	dirs, _ := filepath.Glob("../testdata/repos/*")
	dirs = append(dirs, "../../samples/apps/go-hello")
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tb := &testBuild{reg: reg, dir: dir}
			img, err := tb.run(t, "", func(o *dockerBuildOptions) { o.BuildArgs = []kv{{"GO_LDFLAGS", "-s"}} })
			if filepath.Base(dir) == "broken-docker" {
				var bf *buildFailure
				if !errors.As(err, &bf) || bf.Reason != buildv1.StatusReasonDockerBuildFailed || !strings.Contains(tb.log(), "does-not-exist.txt") {
					t.Errorf("broken-docker: %v\n%s", err, tb.log())
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, tb.log())
			}
			if _, err := img.Digest(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
