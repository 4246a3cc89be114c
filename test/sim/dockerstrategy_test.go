package sim

import (
	"os"
	"strings"
	"testing"
)

// The Dockerfile OpenShift's builder hands buildah: the strategy's from in
// the last FROM only, the strategy env after every FROM, the build info and
// labels appended; the base images pulled first are the stages' images with
// ARGs substituted, not scratch nor earlier stages.
func TestEditDockerfile(t *testing.T) {
	in := `# syntax=docker/dockerfile:1
ARG GO_IMAGE=registry.access.redhat.com/ubi9/go-toolset:latest
ARG TAG
# builder
FROM ${GO_IMAGE} AS builder
RUN echo one \
    two
RUN <<EOF
FROM not-an-instruction
EOF
FROM builder AS again
FROM registry.access.redhat.com/ubi9/ubi-minimal:$TAG
COPY --from=builder /x /x
FROM --platform=linux/amd64 scratch AS final
CMD ["/x"]
`
	var logged []string
	out, bases, err := editDockerfile([]byte(in), dockerfileEdit{
		From:        "example.com/base:1",
		StrategyEnv: []kv{{"A", "1"}},
		BuildEnv:    []kv{{"OPENSHIFT_BUILD_NAME", "app-1"}},
		Labels:      []kv{{"io.openshift.build.name", "app-1"}, {"msg", `say "hi" $HOME`}},
	}, []kv{{"TAG", "9.4"}}, func(s string) { logged = append(logged, s) })
	if err != nil {
		t.Fatal(err)
	}
	want := `# syntax=docker/dockerfile:1
ARG GO_IMAGE=registry.access.redhat.com/ubi9/go-toolset:latest
ARG TAG
# builder
FROM ${GO_IMAGE} AS builder
ENV "A"="1"
RUN echo one \
    two
RUN <<EOF
FROM not-an-instruction
EOF
FROM builder AS again
ENV "A"="1"
FROM registry.access.redhat.com/ubi9/ubi-minimal:$TAG
ENV "A"="1"
COPY --from=builder /x /x
FROM --platform=linux/amd64 example.com/base:1 AS final
ENV "A"="1"
CMD ["/x"]
ENV "OPENSHIFT_BUILD_NAME"="app-1"
LABEL "io.openshift.build.name"="app-1" "msg"="say \"hi\" $HOME"
`
	if string(out) != want {
		t.Errorf("edited Dockerfile:\n%s\nwant:\n%s", out, want)
	}
	if got := strings.Join(bases, " "); got != "registry.access.redhat.com/ubi9/go-toolset:latest registry.access.redhat.com/ubi9/ubi-minimal:9.4 example.com/base:1" {
		t.Errorf("bases %s", got)
	}
	if len(logged) != 1 || logged[0] != "Replaced Dockerfile FROM image scratch" {
		t.Errorf("logged %q", logged)
	}

	if _, _, err := editDockerfile([]byte("# only a comment\nRUN true\n"), dockerfileEdit{}, nil, func(string) {}); err == nil ||
		!strings.Contains(err.Error(), "no FROM instruction") {
		t.Errorf("a Dockerfile without FROM: %v", err)
	}
}

// A Dockerfile in the escape=` dialect keeps its continuations.
func TestEditDockerfileEscapeDirective(t *testing.T) {
	in := "# escape=`\nFROM a:1 `\n  AS b\nRUN echo `\n  hi\n"
	out, bases, err := editDockerfile([]byte(in), dockerfileEdit{StrategyEnv: []kv{{"X", "y"}}}, nil, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# escape=`\nFROM a:1 `\n  AS b\nENV \"X\"=\"y\"\nRUN echo `\n  hi\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if len(bases) != 1 || bases[0] != "a:1" {
		t.Errorf("bases %q", bases)
	}
}

// The registries configuration sends the unreachable registries to their
// mirrors in the sandbox registry and marks plain-http ones insecure.
func TestRegistriesConf(t *testing.T) {
	c := registriesConf("127.0.0.1:5000", []string{"127.0.0.1:6000"})
	for _, want := range []string{
		"prefix = \"registry.access.redhat.com\"\nlocation = \"127.0.0.1:5000/registry.access.redhat.com\"\ninsecure = true",
		"prefix = \"docker.io\"\nlocation = \"127.0.0.1:5000/index.docker.io\"",
		"prefix = \"" + InternalRegistry + "\"\nlocation = \"127.0.0.1:5000\"",
		"prefix = \"127.0.0.1:6000\"\nlocation = \"127.0.0.1:6000\"\ninsecure = true",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("registries.conf lacks %q:\n%s", want, c)
		}
	}
}

// Push and pull secrets of both kinds become one auth file.
func TestSetAuth(t *testing.T) {
	b := &buildah{dir: t.TempDir()}
	err := b.setAuth(
		map[string][]byte{".dockercfg": []byte(`{"pull.example.com":{"auth":"cDpx"}}`)},
		map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"push.example.com":{"auth":"dTpw"}}}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if b.authFile == "" {
		t.Fatal("no auth file")
	}
	data, err := os.ReadFile(b.authFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"pull.example.com":{"auth":"cDpx"}`) || !strings.Contains(string(data), `"push.example.com":{"auth":"dTpw"}`) {
		t.Errorf("auth file %s", data)
	}
	if err := b.setAuth(map[string][]byte{".dockerconfigjson": []byte(`{not json`)}); err == nil || !strings.Contains(err.Error(), ".dockerconfigjson") {
		t.Errorf("a broken secret: %v", err)
	}
}
