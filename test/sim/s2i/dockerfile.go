package s2i

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// dockerfile writes the Dockerfile in s2i's shape and with its comments
// (source-to-image pkg/build/strategies/dockerfile/dockerfile.go,
// CreateDockerfile). Where s2i writes a value unquoted, this quotes it when
// it has to: a path with spaces goes into COPY's JSON form and is
// single-quoted in RUN and CMD; LABEL and ENV values are double-quoted with
// ", \ and $ escaped (s2i escapes $ only in ENV), and a newline, which no
// Dockerfile instruction can carry, is written as the two characters \n.
func (g *gen) dockerfile() (string, error) {
	var b strings.Builder
	chown := "--chown=" + g.user + ":0"
	user := func() {
		if g.user != "root" {
			fmt.Fprintf(&b, "USER %s\n", g.user)
		}
	}
	incremental := g.r.PreviousImage != ""

	if incremental {
		// Incremental builds run save-artifacts in the previous image, in
		// a first stage.
		fmt.Fprintf(&b, "FROM %s as cached\n", g.r.PreviousImage)
		sa := g.scriptPath(SaveArtifacts)
		if g.uploaded[SaveArtifacts] {
			b.WriteString("# Copying in override save-artifacts script\n")
			b.WriteString(copyLine([]string{chown}, "upload/scripts/save-artifacts", sa))
		} else {
			b.WriteString("# Save-artifacts script sourced from builder image based on user input or image metadata.\n")
		}
		user()
		fmt.Fprintf(&b, "RUN if [ -s %[1]s ]; then %[1]s > %[2]s; else touch %[2]s; fi\n", shq(sa), ArtifactsTar)
	}

	fmt.Fprintf(&b, "FROM %s\n", g.r.Builder.Image)
	if len(g.labels) > 0 {
		b.WriteString("LABEL ")
		for i, l := range g.labels {
			if i > 0 {
				b.WriteString(" \\\n      ")
			}
			b.WriteString(dq(l.Name) + "=" + dq(l.Value))
		}
		b.WriteString("\n")
	}
	if len(g.env) > 0 {
		b.WriteString("ENV ")
		for i, e := range g.env {
			if i > 0 {
				b.WriteString(" \\\n    ")
			}
			b.WriteString(e.Name + "=" + dq(e.Value))
		}
		b.WriteString("\n")
	}
	if incremental {
		b.WriteString(copyLine([]string{chown, "--from=cached"}, ArtifactsTar, ArtifactsTar))
	}
	if len(g.uploaded) > 0 {
		// Only when there are scripts: COPY of an empty directory fails.
		b.WriteString("# Copying in override assemble/run scripts\n")
		b.WriteString(copyLine([]string{chown}, "upload/scripts", path.Join(g.dest, "scripts")))
	}
	b.WriteString("# Copying in source code\n")
	b.WriteString(copyLine([]string{chown}, "upload/src", path.Join(g.dest, "src")))
	// Run the rest as the assemble user.
	user()
	if incremental {
		art := shq(path.Join(g.dest, "artifacts"))
		b.WriteString("# Extract artifact content\n")
		fmt.Fprintf(&b, "RUN if [ -s %[1]s ]; then mkdir -p %[2]s; tar -xf %[1]s -C %[2]s; fi && \\\n", ArtifactsTar, art)
		fmt.Fprintf(&b, "    rm %s\n", ArtifactsTar)
	}
	if !g.uploaded[Assemble] {
		b.WriteString("# Assemble script sourced from builder image based on user input or image metadata.\n")
		b.WriteString("# If this file does not exist in the image, the build will fail.\n")
	}
	fmt.Fprintf(&b, "RUN %s\n", shq(g.scriptPath(Assemble)))
	if !g.uploaded[Run] {
		b.WriteString("# Run script sourced from builder image based on user input or image metadata.\n")
		b.WriteString("# If this file does not exist in the image, the build will fail.\n")
	}
	fmt.Fprintf(&b, "CMD %s\n", shq(g.scriptPath(Run)))
	return b.String(), nil
}

// copyLine is a COPY instruction; its JSON form when a path needs quoting.
func copyLine(flags []string, src, dst string) string {
	pre := "COPY " + strings.Join(flags, " ") + " "
	if !needsQuote(src) && !needsQuote(dst) {
		return pre + src + " " + dst + "\n"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode([]string{src, dst}) // strings always encode
	return pre + strings.Replace(buf.String(), `","`, `", "`, 1)
}

func needsQuote(s string) bool {
	return strings.HasPrefix(s, "[") || strings.IndexFunc(s, unicode.IsSpace) >= 0
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shq quotes s for /bin/sh when it has to (RUN and CMD's shell form).
func shq(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dq double-quotes s for LABEL and ENV: the Dockerfile's word lexer takes \"
// \\ and \$ as the characters themselves, and leaves a backslash before any
// other character as it is.
func dq(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkPath refuses a path the Dockerfile cannot carry as written here:
// control characters, quotes, backslashes, $ and backquotes (spaces are
// fine: they are quoted).
func checkPath(what, p string) error {
	if p == "" {
		return failf(ReasonDockerfileCreate, "%s is empty", what)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || strings.ContainsRune("\"'\\$`", c) {
			return failf(ReasonDockerfileCreate, "%s %q has a character that cannot be used in the Dockerfile (%q)", what, p, c)
		}
	}
	return nil
}

// checkRef refuses an image reference that would break its FROM line.
func checkRef(what, ref string) error {
	if strings.IndexFunc(ref, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return failf(ReasonDockerfileCreate, "%s %q contains white space", what, ref)
	}
	return nil
}
