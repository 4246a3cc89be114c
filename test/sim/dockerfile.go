package sim

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	buildv1 "github.com/openshift/api/build/v1"
)

// This file interprets Dockerfiles the way the simulator's Docker strategy
// builds them: FROM (scratch, an earlier stage, or an image pulled through the
// sandbox registry), COPY/ADD (one layer each), ENV, ARG and build args,
// LABEL, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD, SHELL, VOLUME, STOPSIGNAL,
// HEALTHCHECK, ONBUILD, MAINTAINER. RUN is never executed.

// buildFailure is an error that fails the build with a given reason.
type buildFailure struct {
	Reason  buildv1.StatusReason
	Message string // empty: the canonical message of Reason
	Err     error
}

func (f *buildFailure) Error() string { return f.Err.Error() }
func (f *buildFailure) Unwrap() error { return f.Err }

func failWith(reason buildv1.StatusReason, err error) error {
	return &buildFailure{Reason: reason, Err: err}
}

// instruction is one Dockerfile instruction.
type instruction struct {
	Cmd      string   // keyword, upper case
	Flags    []string // leading --flags (FROM, COPY, ADD, RUN, HEALTHCHECK)
	Args     string   // the rest of the instruction, continuation lines joined
	JSON     []string // the exec form, when IsJSON
	IsJSON   bool
	Line     int
	Heredocs []string
	// pairs, for instructions the build inserts (OpenShift's ENV and LABEL),
	// are the already split key/value pairs.
	pairs []kv
}

// String is the instruction as build logs print it.
func (in instruction) String() string {
	parts := []string{in.Cmd}
	parts = append(parts, in.Flags...)
	if in.Args != "" {
		parts = append(parts, in.Args)
	}
	return strings.Join(parts, " ")
}

type kv struct{ K, V string }

// quotedPairs renders pairs as OpenShift writes them into a Dockerfile.
func quotedPairs(pairs []kv) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(p.K) + "=" + strconv.Quote(p.V))
	}
	return b.String()
}

var (
	directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)
	heredocRE   = regexp.MustCompile(`<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)`)
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	escape rune
	inst   []instruction
}

// parseDockerfile splits data into instructions: parser directives (escape),
// comments, line continuations, flags, the JSON forms and heredocs.
func parseDockerfile(data []byte) (*dockerfile, error) {
	df := &dockerfile{escape: '\\'}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	i := 0
	for ; i < len(lines); i++ {
		m := directiveRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			break
		}
		if strings.EqualFold(m[1], "escape") {
			if m[2] != "\\" && m[2] != "`" {
				return nil, fmt.Errorf("invalid escape token %q does not match ` or \\", m[2])
			}
			df.escape = rune(m[2][0])
		}
	}
	isComment := func(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "#") }
	for ; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t")
		if strings.TrimSpace(line) == "" || isComment(line) {
			continue
		}
		start := i + 1
		cur := strings.TrimLeft(line, " \t")
		for strings.HasSuffix(cur, string(df.escape)) {
			cur = strings.TrimSuffix(cur, string(df.escape))
			i++
			for i < len(lines) && (isComment(lines[i]) || strings.TrimSpace(lines[i]) == "") {
				i++
			}
			if i >= len(lines) {
				break
			}
			cur += strings.TrimRight(lines[i], " \t")
		}
		kw, rest, _ := strings.Cut(cur, " ")
		if t := strings.IndexAny(kw, "\t"); t >= 0 {
			kw, rest = cur[:t], cur[t+1:]
		}
		in := instruction{Cmd: strings.ToUpper(kw), Line: start}
		rest = strings.TrimSpace(rest)
		switch in.Cmd {
		case "FROM", "COPY", "ADD", "RUN", "HEALTHCHECK":
			for strings.HasPrefix(rest, "--") {
				flag, r, _ := strings.Cut(rest, " ")
				in.Flags = append(in.Flags, flag)
				rest = strings.TrimSpace(r)
			}
		}
		in.Args = rest
		switch in.Cmd {
		case "RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME":
			if strings.HasPrefix(rest, "[") {
				var arr []string
				if err := json.Unmarshal([]byte(rest), &arr); err == nil {
					in.JSON, in.IsJSON = arr, true
				}
			}
		}
		if !in.IsJSON && (in.Cmd == "RUN" || in.Cmd == "COPY" || in.Cmd == "ADD") {
			for _, m := range heredocRE.FindAllStringSubmatch(rest, -1) {
				strip, word := m[1] == "-", m[3]
				var body []string
				for i++; i < len(lines); i++ {
					l := lines[i]
					if strip {
						l = strings.TrimLeft(l, "\t")
					}
					if l == word {
						break
					}
					body = append(body, l)
				}
				in.Heredocs = append(in.Heredocs, strings.Join(body, "\n")+"\n")
			}
		}
		df.inst = append(df.inst, in)
	}
	return df, nil
}

// lexer does Docker's word processing: quotes, escapes, and $VAR, ${VAR},
// ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg},
// ${VAR?msg} expansion. Expanded values are never split into words.
type lexer struct {
	escape rune
	lookup func(string) (string, bool)
}

// words splits s at unquoted whitespace and expands each word.
func (lx lexer) words(s string) ([]string, error) { return lx.process(s, true) }

// word expands s as a single word (whitespace kept).
func (lx lexer) word(s string) (string, error) {
	w, err := lx.process(s, false)
	if err != nil || len(w) == 0 {
		return "", err
	}
	return w[0], nil
}

func (lx lexer) process(s string, split bool) ([]string, error) {
	rs := []rune(s)
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case split && (c == ' ' || c == '\t' || c == '\n'):
			flush()
		case c == lx.escape:
			inWord = true
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'':
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unexpected end of statement while looking for matching single-quote")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i = j
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				switch {
				case rs[j] == lx.escape && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '$' || rs[j+1] == lx.escape):
					j++
					cur.WriteRune(rs[j])
				case rs[j] == '$':
					v, n, err := lx.dollar(rs[j:])
					if err != nil {
						return nil, err
					}
					cur.WriteString(v)
					j += n - 1
				default:
					cur.WriteRune(rs[j])
				}
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unexpected end of statement while looking for matching double-quote")
			}
			i = j
		case c == '$':
			inWord = true
			v, n, err := lx.dollar(rs[i:])
			if err != nil {
				return nil, err
			}
			cur.WriteString(v)
			i += n - 1
		default:
			inWord = true
			cur.WriteRune(c)
		}
	}
	flush()
	if !split && len(words) == 0 {
		words = []string{""}
	}
	return words, nil
}

func isNameRune(r rune, first bool) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (!first && r >= '0' && r <= '9')
}

// dollar expands the reference at rs[0]=='$' and returns its value and the
// number of runes it used.
func (lx lexer) dollar(rs []rune) (string, int, error) {
	if len(rs) < 2 {
		return "$", 1, nil
	}
	if rs[1] >= '0' && rs[1] <= '9' {
		v, _ := lx.get(string(rs[1])) // a positional parameter: unset
		return v, 2, nil
	}
	if rs[1] != '{' {
		j := 1
		for j < len(rs) && isNameRune(rs[j], j == 1) {
			j++
		}
		if j == 1 {
			return "$", 1, nil
		}
		v, _ := lx.get(string(rs[1:j]))
		return v, j, nil
	}
	// ${...}: find the matching brace.
	depth, j := 1, 2
	for ; j < len(rs) && depth > 0; j++ {
		switch rs[j] {
		case '{':
			depth++
		case '}':
			depth--
		}
	}
	if depth != 0 {
		return "", 0, fmt.Errorf("missing '}' in %q", string(rs))
	}
	inner := string(rs[2 : j-1])
	n := 0
	for n < len(inner) && isNameRune(rune(inner[n]), n == 0) {
		n++
	}
	if n == 0 {
		return "", 0, fmt.Errorf("bad substitution: ${%s}", inner)
	}
	nameStr, op := inner[:n], inner[n:]
	val, set := lx.get(nameStr)
	if op == "" {
		return val, j, nil
	}
	colon := strings.HasPrefix(op, ":")
	mod := strings.TrimPrefix(op, ":")
	if mod == "" {
		return "", 0, fmt.Errorf("bad substitution: ${%s}", inner)
	}
	word, err := lx.word(mod[1:])
	if err != nil {
		return "", 0, err
	}
	empty := !set || (colon && val == "")
	switch mod[0] {
	case '-':
		if empty {
			return word, j, nil
		}
		return val, j, nil
	case '+':
		if empty {
			return "", j, nil
		}
		return word, j, nil
	case '?':
		if empty {
			if word == "" {
				word = "is not allowed to be unset"
			}
			return "", 0, fmt.Errorf("%s: %s", nameStr, word)
		}
		return val, j, nil
	}
	return "", 0, fmt.Errorf("unsupported modifier (%c) in substitution: ${%s}", mod[0], inner)
}

func (lx lexer) get(name string) (string, bool) {
	if lx.lookup == nil {
		return "", false
	}
	return lx.lookup(name)
}

// dockerignore is a .dockerignore matcher.
type dockerignore struct {
	pats []ignorePattern
}

type ignorePattern struct {
	re     *regexp.Regexp
	negate bool
}

func parseDockerignore(data []byte) (*dockerignore, error) {
	di := &dockerignore{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		if neg {
			line = strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(line)), "/")
		if line == "" {
			continue
		}
		re, err := globRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: %q: %w", line, err)
		}
		di.pats = append(di.pats, ignorePattern{re: re, negate: neg})
	}
	return di, sc.Err()
}

// globRegexp converts a .dockerignore pattern (with **) to a regexp.
func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				i++
				if i+1 < len(p) && p[i+1] == '/' {
					i++
					b.WriteString("(.*/)?")
				} else {
					b.WriteString(".*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, errors.New("syntax error in pattern")
			}
			class := p[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// excluded reports whether rel (slash-separated, relative to the context)
// is excluded: the last pattern matching it or one of its parents decides.
func (di *dockerignore) excluded(rel string) bool {
	if di == nil || rel == "" || rel == "." {
		return false
	}
	ex := false
	for _, p := range di.pats {
		if p.matches(rel) {
			ex = !p.negate
		}
	}
	return ex
}

func (p ignorePattern) matches(rel string) bool {
	for q := rel; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		if p.re.MatchString(q) {
			return true
		}
	}
	return false
}

// dockerBuildOptions configure a Docker-strategy build.
type dockerBuildOptions struct {
	ContextDir     string
	DockerfilePath string // relative to ContextDir
	BuildArgs      []kv
	FromOverride   string // dockerStrategy.from (DockerImage): replaces the last FROM
	StrategyEnv    []kv   // dockerStrategy.env: ENV after every FROM
	BuildInfoEnv   []kv   // OPENSHIFT_BUILD_*: an ENV appended at the end
	Labels         []kv   // build labels and output.imageLabels: a LABEL at the end
	WorkDir        string // for layer files and extracted stages
	Log            func(string)
	Now            time.Time
	// Pull fetches a base image (FROM, COPY --from=<image>).
	Pull func(ctx context.Context, image string) (v1.Image, error)
}

// dockerBuild is one run of the interpreter.
type dockerBuild struct {
	o        dockerBuildOptions
	df       *dockerfile
	ignore   *dockerignore
	globals  map[string]string // global ARG values (before the first FROM)
	declared map[string]bool   // every ARG name seen, for the unused build-arg warning
	args     map[string]string // build args given
	stages   []*stage
	images   map[string]v1.Image // pulled by name
	roots    map[string]string   // materialized stages/images for COPY --from
	nroots   int
}

type stage struct {
	index      int
	name       string // lower-cased alias, or ""
	base       v1.Image
	baseCfg    *v1.ConfigFile
	cfg        v1.Config
	author     string
	history    []v1.History
	adds       []mutate.Addendum
	args       map[string]string // ARGs in scope
	cmdSet     bool
	skippedRun bool
	mediaType  types.MediaType
	shell      []string
	basePaths  map[string]byte // lazily: paths of base
	added      map[string]byte // paths our layers and WORKDIR created
	img        v1.Image        // cache of image()
	now        time.Time
}

// runDockerBuild builds the image the Dockerfile describes.
func runDockerBuild(ctx context.Context, o dockerBuildOptions) (v1.Image, error) {
	dfPath := filepath.Join(o.ContextDir, filepath.FromSlash(o.DockerfilePath))
	data, err := os.ReadFile(dfPath)
	if err != nil {
		o.Log(fmt.Sprintf("error: build error: failed to read Dockerfile %q: %v", o.DockerfilePath, errors.Unwrap(err)))
		return nil, failWith(buildv1.StatusReasonDockerBuildFailed, err)
	}
	df, err := parseDockerfile(data)
	if err != nil {
		o.Log("error: build error: parsing Dockerfile: " + err.Error())
		return nil, failWith(buildv1.StatusReasonDockerBuildFailed, err)
	}
	b := &dockerBuild{o: o, df: df, globals: map[string]string{}, declared: map[string]bool{},
		args: map[string]string{}, images: map[string]v1.Image{}, roots: map[string]string{}}
	for _, a := range o.BuildArgs {
		b.args[a.K] = a.V
	}
	if ig, err := os.ReadFile(filepath.Join(o.ContextDir, ".dockerignore")); err == nil {
		if b.ignore, err = parseDockerignore(ig); err != nil {
			o.Log("error: build error: " + err.Error())
			return nil, failWith(buildv1.StatusReasonDockerBuildFailed, err)
		}
	}
	img, err := b.run(ctx)
	if err != nil {
		var bf *buildFailure
		if !errors.As(err, &bf) {
			err = failWith(buildv1.StatusReasonDockerBuildFailed, err)
		}
		return nil, err
	}
	return img, nil
}

// rewrite applies what OpenShift's builder does to the Dockerfile before
// building: the strategy's from replaces the last FROM, the build info is
// appended as an ENV, the labels as a LABEL, and the strategy env is inserted
// after every FROM.
func (b *dockerBuild) rewrite() ([]instruction, error) {
	in := b.df.inst
	last := -1
	for i, x := range in {
		if x.Cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return nil, errors.New("no FROM instruction: a Dockerfile must start with FROM (after global ARGs)")
	}
	out := make([]instruction, 0, len(in)+4)
	for i, x := range in {
		if i == last && b.o.FromOverride != "" {
			words := strings.Fields(x.Args)
			if len(words) > 0 {
				b.o.Log("Replaced Dockerfile FROM image " + words[0])
				words[0] = b.o.FromOverride
				x.Args = strings.Join(words, " ")
			}
		}
		out = append(out, x)
		if x.Cmd == "FROM" && len(b.o.StrategyEnv) > 0 {
			out = append(out, instruction{Cmd: "ENV", Args: quotedPairs(b.o.StrategyEnv), pairs: b.o.StrategyEnv})
		}
	}
	if len(b.o.BuildInfoEnv) > 0 {
		out = append(out, instruction{Cmd: "ENV", Args: quotedPairs(b.o.BuildInfoEnv), pairs: b.o.BuildInfoEnv})
	}
	if len(b.o.Labels) > 0 {
		out = append(out, instruction{Cmd: "LABEL", Args: quotedPairs(b.o.Labels), pairs: b.o.Labels})
	}
	return out, nil
}

func (b *dockerBuild) run(ctx context.Context) (v1.Image, error) {
	insts, err := b.rewrite()
	if err != nil {
		b.o.Log("error: build error: " + err.Error())
		return nil, err
	}
	// Global ARGs, and the split into stages.
	var groups [][]instruction
	for _, x := range insts {
		if x.Cmd == "FROM" {
			groups = append(groups, []instruction{x})
			continue
		}
		if len(groups) == 0 {
			if x.Cmd != "ARG" {
				err := fmt.Errorf("no build stage in current context: %s must follow FROM (line %d)", x.Cmd, x.Line)
				b.o.Log("error: build error: " + err.Error())
				return nil, err
			}
			if err := b.globalArg(x); err != nil {
				b.o.Log("error: build error: " + err.Error())
				return nil, err
			}
			continue
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], x)
	}
	var final v1.Image
	for si, g := range groups {
		prefix := ""
		if len(groups) > 1 {
			prefix = fmt.Sprintf("[%d/%d] ", si+1, len(groups))
		}
		var st *stage
		for i, x := range g {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b.o.Log(fmt.Sprintf("%sSTEP %d/%d: %s", prefix, i+1, len(g), x))
			if i == 0 {
				st, err = b.from(ctx, si, x)
			} else {
				err = b.step(ctx, st, x)
			}
			if err != nil {
				var bf *buildFailure
				if errors.As(err, &bf) && bf.Reason == buildv1.StatusReasonPullBuilderImageFailed {
					return nil, err
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				b.o.Log(fmt.Sprintf("error: build error: building at STEP \"%s\": %v", x, err))
				return nil, err
			}
		}
		b.stages = append(b.stages, st)
		if final, err = st.image(); err != nil {
			return nil, err
		}
	}
	var unused []string
	for k := range b.args {
		if !b.declared[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		b.o.Log(fmt.Sprintf("[Warning] one or more build args were not consumed: [%s]", strings.Join(unused, " ")))
	}
	return final, nil
}

// platformArgs are the automatic platform ARGs (usable once declared).
var platformArgs = map[string]string{
	"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
	"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
}

func (b *dockerBuild) globalArg(x instruction) error {
	lx := lexer{escape: b.df.escape, lookup: func(n string) (string, bool) { v, ok := b.globals[n]; return v, ok }}
	words, err := lx.words(x.Args)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("ARG requires at least one argument")
	}
	for _, w := range words {
		k, v, hasDefault := strings.Cut(w, "=")
		b.declared[k] = true
		if a, ok := b.args[k]; ok {
			v, hasDefault = a, true
		} else if p, ok := platformArgs[k]; ok && !hasDefault {
			v, hasDefault = p, true
		}
		if hasDefault {
			b.globals[k] = v
		} else {
			b.globals[k] = ""
		}
	}
	return nil
}

func (b *dockerBuild) globalLexer() lexer {
	return lexer{escape: b.df.escape, lookup: func(n string) (string, bool) { v, ok := b.globals[n]; return v, ok }}
}

func (b *dockerBuild) from(ctx context.Context, index int, x instruction) (*stage, error) {
	for _, f := range x.Flags {
		if !strings.HasPrefix(f, "--platform=") {
			return nil, fmt.Errorf("unknown flag: %s", strings.SplitN(f, "=", 2)[0])
		}
	}
	words := strings.Fields(x.Args)
	if len(words) != 1 && !(len(words) == 3 && strings.EqualFold(words[1], "AS")) {
		return nil, errors.New("FROM requires either one or three arguments")
	}
	ref, err := b.globalLexer().word(words[0])
	if err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, errors.New("base name (" + words[0] + ") should not be blank")
	}
	st := &stage{index: index, args: map[string]string{}, added: map[string]byte{}, now: b.o.Now}
	if len(words) == 3 {
		st.name = strings.ToLower(words[2])
	}
	switch {
	case strings.EqualFold(ref, "scratch"):
		st.base = mutate.MediaType(empty.Image, types.DockerManifestSchema2)
		st.basePaths = map[string]byte{}
	case b.stageByName(ref) != nil:
		prev := b.stageByName(ref)
		if st.base, err = prev.image(); err != nil {
			return nil, err
		}
	default:
		if st.base, err = b.pull(ctx, ref); err != nil {
			return nil, err
		}
	}
	cf, err := st.base.ConfigFile()
	if err != nil {
		return nil, err
	}
	st.baseCfg = cf.DeepCopy()
	st.cfg = *cf.Config.DeepCopy()
	st.author = cf.Author
	st.mediaType = layerMediaType(st.base)
	st.shell = []string{"/bin/sh", "-c"}
	if len(st.cfg.Shell) > 0 {
		st.shell = st.cfg.Shell
	}
	if len(st.cfg.OnBuild) > 0 {
		b.o.Log(fmt.Sprintf("ONBUILD triggers of %s are not executed by the simulator: %s", ref, strings.Join(st.cfg.OnBuild, "; ")))
		st.cfg.OnBuild = nil
	}
	return st, nil
}

func (b *dockerBuild) stageByName(n string) *stage {
	n = strings.ToLower(n)
	for _, s := range b.stages {
		if s.name != "" && s.name == n {
			return s
		}
	}
	if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < len(b.stages) {
		return b.stages[i]
	}
	return nil
}

// pull fetches an image, logging as buildah does.
func (b *dockerBuild) pull(ctx context.Context, ref string) (v1.Image, error) {
	if img, ok := b.images[ref]; ok {
		return img, nil
	}
	img, err := pullAndLog(ctx, ref, b.o.Pull, b.o.Log)
	if err != nil {
		return nil, err
	}
	b.images[ref] = img
	return img, nil
}

// pullAndLog pulls ref, printing buildah's pull lines; a failure is a
// PullBuilderImageFailed buildFailure.
func pullAndLog(ctx context.Context, ref string, pull func(context.Context, string) (v1.Image, error), logf func(string)) (v1.Image, error) {
	logf("Trying to pull " + ref + "...")
	img, err := pull(ctx, ref)
	if err == nil {
		var layers []v1.Layer
		if layers, err = img.Layers(); err == nil {
			var cfg v1.Hash
			if cfg, err = img.ConfigName(); err == nil {
				logf("Getting image source signatures")
				for _, l := range layers {
					if d, err := l.Digest(); err == nil {
						logf("Copying blob " + d.Hex[:12] + " done")
					}
				}
				logf("Copying config " + cfg.Hex[:12] + " done")
				logf("Writing manifest to image destination")
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		logf(fmt.Sprintf("error: build error: failed to pull image %s: %v", ref, err))
		return nil, failWith(buildv1.StatusReasonPullBuilderImageFailed, fmt.Errorf("pulling %s: %w", ref, err))
	}
	return img, nil
}

// lexer of a stage: ENV first, then ARGs in scope.
func (b *dockerBuild) lexer(st *stage) lexer {
	return lexer{escape: b.df.escape, lookup: func(n string) (string, bool) {
		for i := len(st.cfg.Env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(st.cfg.Env[i], "="); k == n {
				return v, true
			}
		}
		v, ok := st.args[n]
		return v, ok
	}}
}

func (st *stage) setEnv(k, v string) {
	for i, e := range st.cfg.Env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			st.cfg.Env[i] = k + "=" + v
			return
		}
	}
	st.cfg.Env = append(st.cfg.Env, k+"="+v)
}

func (st *stage) record(x instruction, layer v1.Layer) {
	st.history = append(st.history, v1.History{
		Created:    v1.Time{Time: st.now},
		CreatedBy:  "/bin/sh -c #(nop) " + x.String(),
		Comment:    "ocbuild simulator",
		EmptyLayer: layer == nil,
	})
	if layer != nil {
		st.adds = append(st.adds, mutate.Addendum{Layer: layer})
	}
	st.img = nil
}

// image assembles the stage as built so far.
func (st *stage) image() (v1.Image, error) {
	if st.img != nil {
		return st.img, nil
	}
	img := st.base
	var err error
	if len(st.adds) > 0 {
		if img, err = mutate.Append(st.base, st.adds...); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = *st.cfg.DeepCopy()
	cf.Author = st.author
	cf.Created = v1.Time{Time: st.now}
	if cf.OS == "" {
		cf.OS, cf.Architecture = "linux", "amd64"
	}
	cf.History = append(append([]v1.History(nil), st.baseCfg.History...), st.history...)
	if st.img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	return st.img, nil
}

// pathType returns the type of p (absolute) in the stage's filesystem,
// following a symlink in the last component once; 0 if absent.
func (st *stage) pathType(p string) byte {
	rel := strings.TrimPrefix(path.Clean(p), "/")
	if rel == "" {
		return tar.TypeDir
	}
	if t, ok := st.added[rel]; ok {
		return t
	}
	if st.basePaths == nil {
		st.basePaths = map[string]byte{}
		if paths, err := imagePaths(st.base); err == nil {
			st.basePaths = paths
		}
	}
	t := st.basePaths[rel]
	if t == tar.TypeSymlink {
		// resolution needs the link target; treat links to directories by name
		return 0
	}
	return t
}

func (b *dockerBuild) step(ctx context.Context, st *stage, x instruction) error {
	lx := b.lexer(st)
	switch x.Cmd {
	case "ARG":
		words, err := lx.words(x.Args)
		if err != nil {
			return err
		}
		if len(words) == 0 {
			return errors.New("ARG requires at least one argument")
		}
		for _, w := range words {
			k, v, hasDefault := strings.Cut(w, "=")
			if k == "" {
				return errors.New("ARG names can not be blank")
			}
			b.declared[k] = true
			switch a, given := b.args[k]; {
			case given:
				v = a
			case hasDefault:
			default:
				v = b.globals[k]
			}
			st.args[k] = v
		}
		st.record(x, nil)
	case "ENV", "LABEL":
		pairs := x.pairs
		if pairs == nil {
			var err error
			if pairs, err = b.pairs(lx, x); err != nil {
				return err
			}
		}
		for _, p := range pairs {
			if x.Cmd == "ENV" {
				st.setEnv(p.K, p.V)
			} else {
				if st.cfg.Labels == nil {
					st.cfg.Labels = map[string]string{}
				}
				st.cfg.Labels[p.K] = p.V
			}
		}
		st.record(x, nil)
	case "WORKDIR":
		w, err := lx.word(x.Args)
		if err != nil {
			return err
		}
		if w == "" {
			return errors.New("WORKDIR requires exactly one argument")
		}
		if !path.IsAbs(w) {
			w = path.Join("/", st.cfg.WorkingDir, w)
		}
		st.cfg.WorkingDir = path.Clean(w)
		if st.pathType(st.cfg.WorkingDir) == 0 {
			st.added[strings.TrimPrefix(st.cfg.WorkingDir, "/")] = tar.TypeDir
		}
		st.record(x, nil)
	case "USER":
		u, err := lx.word(x.Args)
		if err != nil {
			return err
		}
		if u == "" {
			return errors.New("USER requires exactly one argument")
		}
		st.cfg.User = u
		st.record(x, nil)
	case "EXPOSE":
		words, err := lx.words(x.Args)
		if err != nil {
			return err
		}
		if len(words) == 0 {
			return errors.New("EXPOSE requires at least one argument")
		}
		for _, w := range words {
			ports, err := parsePorts(w)
			if err != nil {
				return err
			}
			if st.cfg.ExposedPorts == nil {
				st.cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				st.cfg.ExposedPorts[p] = struct{}{}
			}
		}
		st.record(x, nil)
	case "ENTRYPOINT", "CMD":
		var cmd []string
		switch {
		case x.IsJSON:
			cmd = x.JSON
		case strings.TrimSpace(x.Args) == "":
			return fmt.Errorf("%s requires at least one argument", x.Cmd)
		default:
			cmd = append(append([]string(nil), st.shell...), x.Args)
		}
		if x.Cmd == "CMD" {
			st.cfg.Cmd = cmd
			st.cmdSet = true
		} else {
			st.cfg.Entrypoint = cmd
			if !st.cmdSet {
				st.cfg.Cmd = nil
			}
		}
		st.record(x, nil)
	case "SHELL":
		if !x.IsJSON || len(x.JSON) == 0 {
			return errors.New("SHELL requires the arguments to be in JSON form")
		}
		st.shell = x.JSON
		st.cfg.Shell = x.JSON
		st.record(x, nil)
	case "VOLUME":
		vols := x.JSON
		if !x.IsJSON {
			var err error
			if vols, err = lx.words(x.Args); err != nil {
				return err
			}
		}
		if len(vols) == 0 {
			return errors.New("VOLUME requires at least one argument")
		}
		if st.cfg.Volumes == nil {
			st.cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			st.cfg.Volumes[v] = struct{}{}
		}
		st.record(x, nil)
	case "STOPSIGNAL":
		s, err := lx.word(x.Args)
		if err != nil {
			return err
		}
		st.cfg.StopSignal = s
		st.record(x, nil)
	case "MAINTAINER":
		st.author = x.Args
		st.record(x, nil)
	case "ONBUILD":
		if x.Args == "" {
			return errors.New("ONBUILD requires at least one argument")
		}
		st.cfg.OnBuild = append(st.cfg.OnBuild, x.Args)
		st.record(x, nil)
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(x)
		if err != nil {
			return err
		}
		st.cfg.Healthcheck = hc
		st.record(x, nil)
	case "RUN":
		cmd := x.Args
		if x.IsJSON {
			cmd = strings.Join(x.JSON, " ")
		}
		b.o.Log("RUN " + cmd + ": not executed by the simulator")
		st.skippedRun = true
		st.record(x, nil)
	case "COPY", "ADD":
		return b.copy(ctx, st, x)
	default:
		return fmt.Errorf("unknown instruction: %s", x.Cmd)
	}
	return nil
}

// pairs parses ENV/LABEL arguments: key=value words, or the legacy
// "KEY value with spaces" form.
func (b *dockerBuild) pairs(lx lexer, x instruction) ([]kv, error) {
	raw := strings.TrimSpace(x.Args)
	if raw == "" {
		return nil, fmt.Errorf("%s requires at least one argument", x.Cmd)
	}
	first := strings.Fields(raw)[0]
	if !strings.Contains(first, "=") {
		rest := strings.TrimSpace(strings.TrimPrefix(raw, first))
		k, err := lx.word(first)
		if err != nil {
			return nil, err
		}
		if rest == "" {
			return nil, fmt.Errorf("%s must have two arguments", x.Cmd)
		}
		v, err := lx.word(rest)
		if err != nil {
			return nil, err
		}
		return []kv{{k, v}}, nil
	}
	words, err := lx.words(raw)
	if err != nil {
		return nil, err
	}
	var out []kv
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("syntax error - can't find = in %q. Must be of the form: name=value", w)
		}
		if k == "" {
			return nil, fmt.Errorf("%s names can not be blank", x.Cmd)
		}
		out = append(out, kv{k, v})
	}
	return out, nil
}

func parsePorts(w string) ([]string, error) {
	port, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err := strconv.Atoi(lo)
	if err != nil || start < 0 || start > 65535 {
		return nil, fmt.Errorf("invalid containerPort: %s", port)
	}
	end := start
	if isRange {
		if end, err = strconv.Atoi(hi); err != nil || end < start || end > 65535 {
			return nil, fmt.Errorf("invalid containerPort: %s", port)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

func parseHealthcheck(x instruction) (*v1.HealthConfig, error) {
	hc := &v1.HealthConfig{}
	for _, f := range x.Flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		switch k {
		case "interval", "timeout", "start-period", "start-interval":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("HEALTHCHECK --%s: %v", k, err)
			}
			switch k {
			case "interval":
				hc.Interval = d
			case "timeout":
				hc.Timeout = d
			case "start-period":
				hc.StartPeriod = d
			}
		case "retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("HEALTHCHECK --retries: %v", err)
			}
			hc.Retries = n
		default:
			return nil, fmt.Errorf("unknown flag: --%s", k)
		}
	}
	kw, rest, _ := strings.Cut(strings.TrimSpace(x.Args), " ")
	switch strings.ToUpper(kw) {
	case "NONE":
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
		rest = strings.TrimSpace(rest)
		var arr []string
		if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &arr) == nil {
			hc.Test = append([]string{"CMD"}, arr...)
		} else if rest != "" {
			hc.Test = []string{"CMD-SHELL", rest}
		} else {
			return nil, errors.New("missing command after HEALTHCHECK CMD")
		}
		return hc, nil
	}
	return nil, fmt.Errorf("unknown type %q in HEALTHCHECK (try CMD)", kw)
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// copyFlags are the parsed flags of COPY/ADD.
type copyFlags struct {
	from, chown string
	chmod       int64
	hasChmod    bool
}

func (b *dockerBuild) copyFlags(lx lexer, x instruction) (copyFlags, error) {
	var cf copyFlags
	for _, f := range x.Flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		var err error
		switch k {
		case "from":
			if cf.from, err = b.globalLexer().word(v); err != nil {
				return cf, err
			}
		case "chown":
			if cf.chown, err = lx.word(v); err != nil {
				return cf, err
			}
		case "chmod":
			m, err := strconv.ParseInt(v, 8, 32)
			if err != nil {
				return cf, fmt.Errorf("invalid chmod parameter %q: only octal modes are supported", v)
			}
			cf.chmod, cf.hasChmod = m, true
		case "link", "parents":
			// layout hints; no effect on the result here
		default:
			if k == "checksum" || k == "keep-git-dir" || k == "exclude" {
				return cf, fmt.Errorf("%s --%s is not supported by the simulator", x.Cmd, k)
			}
			return cf, fmt.Errorf("unknown flag: --%s", k)
		}
	}
	return cf, nil
}

// copy runs COPY or ADD: one layer with the sources.
func (b *dockerBuild) copy(ctx context.Context, st *stage, x instruction) error {
	lx := b.lexer(st)
	flags, err := b.copyFlags(lx, x)
	if err != nil {
		return err
	}
	if len(x.Heredocs) > 0 {
		return fmt.Errorf("%s with a heredoc is not supported by the simulator", x.Cmd)
	}
	var args []string
	if x.IsJSON {
		for _, a := range x.JSON {
			w, err := lx.word(a)
			if err != nil {
				return err
			}
			args = append(args, w)
		}
	} else if args, err = lx.words(x.Args); err != nil {
		return err
	}
	if len(args) < 2 {
		return fmt.Errorf("%s requires at least two arguments, but only one was provided. Destination could not be determined", x.Cmd)
	}
	srcs, dest := args[:len(args)-1], args[len(args)-1]
	uid, gid, err := b.chown(st, flags.chown)
	if err != nil {
		return err
	}

	root, ignore := b.o.ContextDir, b.ignore
	var fromStage *stage
	if flags.from != "" {
		if fromStage = b.stageByName(flags.from); fromStage != nil {
			root, err = b.stageRoot(fromStage.name+"#"+strconv.Itoa(fromStage.index), fromStage.image)
		} else {
			root, err = b.stageRoot("image:"+flags.from, func() (v1.Image, error) { return b.pull(ctx, flags.from) })
		}
		if err != nil {
			return err
		}
		ignore = nil
	}

	trailing := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	destAbs := dest
	if !path.IsAbs(destAbs) {
		destAbs = path.Join("/", st.cfg.WorkingDir, destAbs)
	}
	destAbs = path.Clean(destAbs)
	destIsDir := trailing || st.pathType(destAbs) == tar.TypeDir

	type match struct{ rel, src string }
	var matches []match
	for _, src := range srcs {
		if x.Cmd == "ADD" && (strings.Contains(src, "://") || strings.HasPrefix(src, "git@")) {
			return fmt.Errorf("ADD from a URL (%s) is not supported by the simulator", src)
		}
		if c := path.Clean(filepath.ToSlash(src)); c == ".." || strings.HasPrefix(c, "../") {
			return fmt.Errorf("forbidden path outside the build context: %s", src)
		}
		rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
		found, err := findSources(root, rel, ignore)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			if fromStage != nil && fromStage.skippedRun && !hasGlob(rel) {
				matches = append(matches, match{rel: rel, src: ""}) // placeholder
				continue
			}
			if hasGlob(rel) {
				return fmt.Errorf("no source files were specified (%s matches nothing)", src)
			}
			where := "build context"
			if flags.from != "" {
				where = "stage or image " + flags.from
			}
			return fmt.Errorf("file not found in %s or excluded by .dockerignore: stat %s: file does not exist", where, src)
		}
		for _, f := range found {
			matches = append(matches, match{rel: f, src: src})
		}
	}
	if len(matches) > 1 && !destIsDir {
		return fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", x.Cmd)
	}

	var entries []layerEntry
	addEntry := func(e layerEntry) {
		e.UID, e.GID = uid, gid
		if flags.hasChmod {
			e.Mode = flags.chmod
		}
		entries = append(entries, e)
	}
	destRel := strings.TrimPrefix(destAbs, "/")
	for _, m := range matches {
		if m.src == "" {
			target := destRel
			if destIsDir {
				target = path.Join(destRel, path.Base(m.rel))
			}
			b.o.Log(fmt.Sprintf("%s --from=%s: /%s does not exist in stage %q because its RUN instructions were not executed; the simulator copies a placeholder file to /%s",
				x.Cmd, flags.from, m.rel, flags.from, target))
			addEntry(layerEntry{Name: target, Type: tar.TypeReg, Mode: 0o755, Data: []byte(fmt.Sprintf(
				"#!/bin/sh\n# Placeholder for /%s, which RUN would have produced in stage %q.\n# The ocbuild simulator does not execute RUN.\necho \"placeholder for /%s (ocbuild simulator)\"\n",
				m.rel, flags.from, m.rel))})
			continue
		}
		full := filepath.Join(root, filepath.FromSlash(m.rel))
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			// a source named directly is followed, if it stays in the root
			if real, err := filepath.EvalSymlinks(full); err == nil && within(mustReal(root), real) {
				if fi2, err := os.Stat(real); err == nil {
					full, fi = real, fi2
				}
			}
		}
		switch {
		case fi.IsDir():
			if destRel != "" {
				addEntry(layerEntry{Name: destRel, Type: tar.TypeDir, Mode: tarMode(fi.Mode())})
			}
			if err := walkSources(root, full, m.rel, ignore, func(rel string, fi os.FileInfo, p string) error {
				e, err := entryFor(path.Join(destRel, rel), fi, p)
				if err != nil {
					return err
				}
				addEntry(e)
				return nil
			}); err != nil {
				return err
			}
		case x.Cmd == "ADD" && isArchive(full):
			dir, err := os.MkdirTemp(b.o.WorkDir, "add-*")
			if err != nil {
				return err
			}
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			r, err := maybeGunzip(f)
			if err == nil {
				err = extractTar(dir, r)
			}
			f.Close()
			if err != nil {
				return fmt.Errorf("extracting %s: %w", m.src, err)
			}
			if err := walkSources(dir, dir, "", nil, func(rel string, fi os.FileInfo, p string) error {
				e, err := entryFor(path.Join(destRel, rel), fi, p)
				if err != nil {
					return err
				}
				addEntry(e)
				return nil
			}); err != nil {
				return err
			}
		default:
			target := destRel
			if destIsDir {
				target = path.Join(destRel, path.Base(m.rel))
			}
			if target == "" {
				return fmt.Errorf("cannot copy file %s to /", m.src)
			}
			e, err := entryFor(target, fi, full)
			if err != nil {
				return err
			}
			addEntry(e)
		}
	}
	layer, err := buildLayer(b.o.WorkDir, entries, st.mediaType)
	if err != nil {
		return err
	}
	for _, e := range entries {
		st.added[e.Name] = e.Type
	}
	st.record(x, layer)
	b.o.Log("--> " + layer.digest.Hex[:12])
	return nil
}

func mustReal(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func tarMode(m os.FileMode) int64 {
	out := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// entryFor makes the layer entry for a file on disk at name.
func entryFor(name string, fi os.FileInfo, p string) (layerEntry, error) {
	e := layerEntry{Name: name, Mode: tarMode(fi.Mode())}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return e, err
		}
		e.Type, e.Linkname = tar.TypeSymlink, target
	case fi.IsDir():
		e.Type = tar.TypeDir
	case fi.Mode().IsRegular():
		e.Type, e.Path = tar.TypeReg, p
	default:
		return e, fmt.Errorf("%s: unsupported file type %s", name, fi.Mode().Type())
	}
	return e, nil
}

// findSources resolves a COPY source (relative to root, possibly a glob) to
// the relative paths it names, skipping what .dockerignore excludes.
func findSources(root, rel string, ignore *dockerignore) ([]string, error) {
	if !hasGlob(rel) {
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			if os.IsNotExist(err) {
				return nil, nil
			}
			return nil, err
		}
		if ignore.excluded(rel) {
			return nil, nil
		}
		return []string{rel}, nil
	}
	if _, err := path.Match(rel, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %v", rel, err)
	}
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		r = filepath.ToSlash(r)
		if r == "." {
			return nil
		}
		if ok, _ := path.Match(rel, r); ok && !ignore.excluded(r) {
			out = append(out, r)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out, err
}

// walkSources calls fn for everything under dir (not dir itself), in lexical
// order, with paths relative to dir; relBase is dir relative to root, for
// .dockerignore.
func walkSources(root, dir, relBase string, ignore *dockerignore, fn func(rel string, fi os.FileInfo, p string) error) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		r, _ := filepath.Rel(dir, p)
		r = filepath.ToSlash(r)
		if ignore != nil && ignore.excluded(path.Join(relBase, r)) {
			if d.IsDir() && !ignore.hasExceptions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(r, fi, p)
	})
}

func (di *dockerignore) hasExceptions() bool {
	for _, p := range di.pats {
		if p.negate {
			return true
		}
	}
	return false
}

// stageRoot materializes a stage or image once, for COPY --from.
func (b *dockerBuild) stageRoot(key string, img func() (v1.Image, error)) (string, error) {
	if dir, ok := b.roots[key]; ok {
		return dir, nil
	}
	i, err := img()
	if err != nil {
		return "", err
	}
	b.nroots++
	dir := filepath.Join(b.o.WorkDir, fmt.Sprintf("from-%d", b.nroots))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := materialize(i, dir); err != nil {
		return "", err
	}
	b.roots[key] = dir
	return dir, nil
}

// chown resolves --chown=user[:group] (numbers, or names from the stage's
// /etc/passwd and /etc/group).
func (b *dockerBuild) chown(st *stage, spec string) (int, int, error) {
	if spec == "" {
		return 0, 0, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	var uid, gid int
	var err error
	if uid, err = strconv.Atoi(user); err != nil {
		var pgid int
		if uid, pgid, err = b.lookupID(st, "/etc/passwd", user); err != nil {
			return 0, 0, err
		}
		gid = pgid
	} else {
		gid = uid
	}
	if hasGroup {
		if gid, err = strconv.Atoi(group); err != nil {
			if gid, _, err = b.lookupID(st, "/etc/group", group); err != nil {
				return 0, 0, err
			}
		}
	}
	return uid, gid, nil
}

func (b *dockerBuild) lookupID(st *stage, file, n string) (int, int, error) {
	if n == "root" {
		return 0, 0, nil
	}
	img, err := st.image()
	if err != nil {
		return 0, 0, err
	}
	data, err := readImageFile(img, file)
	if err != nil {
		return 0, 0, fmt.Errorf("unable to find %s %q: no %s in the image", strings.TrimPrefix(file, "/etc/"), n, file)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == n {
			id, err := strconv.Atoi(f[2])
			if err != nil {
				break
			}
			g := id
			if len(f) >= 4 {
				if v, err := strconv.Atoi(f[3]); err == nil && file == "/etc/passwd" {
					g = v
				}
			}
			return id, g, nil
		}
	}
	return 0, 0, fmt.Errorf("unable to find %s %q in %s", strings.TrimPrefix(file, "/etc/"), n, file)
}

func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := maybeGunzip(f)
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}
