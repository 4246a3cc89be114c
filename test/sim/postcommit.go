package sim

// The post-commit hook, as OpenShift's builder runs it (openshift/builder
// pkg/build/builder common.go buildPostCommit, docker.go appendPostCommit):
// not as a separate container, but as a throwaway stage appended to the
// Dockerfile the image is built from (the Docker strategy's, or the one
// source-to-image writes):
//
//	FROM <last image> AS appimage<id>   (the last FROM, given an alias if it has none)
//	…
//	FROM appimage<id>
//	RUN <hook>
//	FROM appimage<id>
//
// The final image is the app image unchanged; the RUN stage only runs the
// hook in it, which is why the builder tells buildah not to skip unused
// stages. A failing hook therefore fails the image build itself: the build
// ends DockerBuildFailed (Docker) or GenericBuildFailed (Source), never
// PostCommitHookFailed, which the current builder defines but does not set.

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
)

// postCommitCommand is the hook as the builder writes it into RUN (shell
// form): a script runs as `/bin/sh -ic '<script> <args>'` (-i so that images
// with Software Collections have them enabled), a command as
// `<command> <args>`. The builder quotes nothing else; neither do we.
func postCommitCommand(pc buildv1.BuildPostCommitSpec) string {
	if pc.Script == "" && len(pc.Command) == 0 && len(pc.Args) == 0 {
		return ""
	}
	if pc.Script != "" {
		return strings.TrimSpace("/bin/sh -ic '" + strings.Join(append([]string{pc.Script}, pc.Args...), " ") + "'")
	}
	return strings.TrimSpace(strings.Join(pc.Command, " ") + " " + strings.Join(pc.Args, " "))
}

// postCommitAlias is a stage name no Dockerfile uses, as the builder's
// "appimage" + a UUID without dashes.
func postCommitAlias() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "appimage" + hex.EncodeToString(b[:])
}

// appendPostCommit adds the hook's stages to a Dockerfile: the last FROM
// gets an alias if it has none, then FROM alias, RUN hook, FROM alias follow
// at the end, each FROM followed by envAfterFrom (the Docker strategy's
// env, which the builder inserts after every FROM, these included).
func appendPostCommit(data []byte, hook string, envAfterFrom []kv) []byte {
	if hook == "" {
		return data
	}
	head, insts := splitDockerfile(data)
	last := lastFrom(insts)
	if last < 0 {
		return data // buildah reports the missing FROM
	}
	out := append([]string(nil), head...)
	var alias string
	for i, in := range insts {
		if i != last {
			out = append(out, in.Raw...)
			continue
		}
		var flags []string
		var image string
		flags, image, alias = fromImage(in.Args)
		if alias != "" {
			out = append(out, in.Raw...)
			continue
		}
		alias = postCommitAlias()
		out = append(out, in.Raw[:in.Lead]...)
		out = append(out, strings.Join(append(append([]string{"FROM"}, flags...), image, "AS", alias), " "))
	}
	env := ""
	if len(envAfterFrom) > 0 {
		env = "ENV " + quotedPairs(envAfterFrom)
	}
	for _, line := range []string{"FROM " + alias, env, "RUN " + hook, "FROM " + alias, env} {
		if line != "" {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n") + "\n")
}
