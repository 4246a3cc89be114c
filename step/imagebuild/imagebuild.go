// Command imagebuild builds the ocbuild step image without a container
// engine: it cross-compiles ./step for each platform, lays the static binary,
// CA certificates and a non-root passwd/group into OCI layers with
// go-containerregistry, and writes a multi-platform OCI image index as an OCI
// layout directory (and optionally pushes it).
//
//	go run ./step/imagebuild --version v0.1.0 --out dist/ocbuild-image
//	go run ./step/imagebuild --version v0.1.0 --out dist/ocbuild-image --push ghcr.io/ocbuild/ocbuild:v0.1.0
//
// The output is reproducible: file times, image creation time and history
// come from --epoch (default: $SOURCE_DATE_EPOCH, else the commit time of
// HEAD, else 0), and tar headers carry no user names.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// binaryPath is where the image keeps the step binary; the strategies
	// run `command: [/ocbuild]`.
	binaryPath = "/ocbuild"
	// caBundlePath is where Go's crypto/x509 looks first on Linux.
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// uid and gid of the image's non-root user. Shipwright strategies
	// override them (runAsUser/runAsGroup), which works too: the binary
	// only needs to be world-executable.
	nonRootID = 65532
	// refNameAnnotation names the image in the OCI layout's index.json.
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

// options says what to build and where to put it.
type options struct {
	ModuleDir string        // module root; "" = found with `go env GOMOD`
	Package   string        // the main package to compile, relative to ModuleDir
	Version   string        // stamped as main.version and into labels and the ref name
	Revision  string        // VCS revision for the labels; "" = `git rev-parse HEAD` if available
	Source    string        // org.opencontainers.image.source
	Platforms []v1.Platform // linux/amd64 and linux/arm64 by default
	CABundle  string        // CA certificates of the build machine to copy in
	Epoch     time.Time     // every timestamp in the image
	Out       string        // OCI layout directory to (re)create; "" = none
	Push      string        // image reference to push the index to; "" = none
	Insecure  bool          // push over plain HTTP
	WorkDir   string        // where compiled binaries go; "" = a temporary directory
	Log       io.Writer
}

// result is what build produced.
type result struct {
	Index    v1.ImageIndex
	Binaries map[string]string // platform ("linux/amd64") -> compiled binary
	Sizes    map[string]int64  // platform -> compressed size (manifest + config + layers)
}

func platformKey(p v1.Platform) string {
	k := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		k += "/" + p.Variant
	}
	return k
}

// parsePlatforms reads "linux/amd64,linux/arm64[/v8]".
func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] != "linux" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH[/VARIANT]", item)
		}
		p := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platforms")
	}
	return out, nil
}

// goarchEnv maps an OCI platform to the Go toolchain's environment.
func goarchEnv(p v1.Platform) ([]string, error) {
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture}
	switch p.Architecture {
	case "amd64", "arm64", "ppc64le", "s390x", "riscv64":
	case "arm":
		v := strings.TrimPrefix(p.Variant, "v")
		if v == "" {
			v = "7"
		}
		env = append(env, "GOARM="+v)
	default:
		return nil, fmt.Errorf("unsupported architecture %q", p.Architecture)
	}
	return env, nil
}

func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// moduleDir finds the root of the module the current directory is in.
func moduleDir(ctx context.Context) (string, error) {
	gomod, err := run(ctx, ".", nil, "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module; pass --module-dir")
	}
	return filepath.Dir(gomod), nil
}

// defaultEpoch is $SOURCE_DATE_EPOCH, else the commit time of HEAD, else 0.
func defaultEpoch(ctx context.Context, dir string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if out, err := run(ctx, dir, nil, "git", "log", "-1", "--format=%ct"); err == nil && out != "" {
		if sec, err := strconv.ParseInt(out, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	return time.Unix(0, 0).UTC(), nil
}

// compile cross-compiles the step binary for one platform.
func compile(ctx context.Context, o *options, p v1.Platform) (string, error) {
	env, err := goarchEnv(p)
	if err != nil {
		return "", err
	}
	out := filepath.Join(o.WorkDir, "ocbuild-"+strings.ReplaceAll(platformKey(p), "/", "-"))
	ldflags := "-s -w -X main.version=" + o.Version
	fmt.Fprintf(o.Log, "compiling %s for %s\n", o.Package, platformKey(p))
	if _, err := run(ctx, o.ModuleDir, env, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, o.Package); err != nil {
		return "", err
	}
	return out, nil
}

// tarEntry is one file or directory of a layer.
type tarEntry struct {
	Name string // without leading slash; directories end with "/"
	Mode int64
	UID  int
	Data []byte
}

// layer makes a deterministic, gzip-compressed OCI layer.
func layer(entries []tarEntry, epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.Name,
			Mode:    e.Mode,
			Uid:     e.UID,
			Gid:     e.UID,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.Name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// baseLayer holds what every platform shares: CA certificates, the non-root
// user and a /tmp. It is byte-identical across platforms, so registries and
// the OCI layout store it once.
func baseLayer(caBundle []byte, epoch time.Time) (v1.Layer, error) {
	id := strconv.Itoa(nonRootID)
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:" + id + ":" + id + ":nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:" + id + ":\n"
	return layer([]tarEntry{
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Name: "etc/ssl/", Mode: 0o755},
		{Name: "etc/ssl/certs/", Mode: 0o755},
		{Name: strings.TrimPrefix(caBundlePath, "/"), Mode: 0o644, Data: caBundle},
		{Name: "home/", Mode: 0o755},
		{Name: "home/nonroot/", Mode: 0o700, UID: nonRootID},
		{Name: "root/", Mode: 0o700},
		{Name: "tmp/", Mode: 0o1777},
	}, epoch)
}

// labels are the OCI annotations of the image config and the index.
func labels(o *options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "ocbuild",
		"org.opencontainers.image.description": "Shipwright build step that runs OpenShift builds",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     o.Epoch.UTC().Format(time.RFC3339),
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// platformImage assembles the image of one platform around its binary.
func platformImage(o *options, p v1.Platform, base v1.Layer, binary []byte) (v1.Image, error) {
	bin, err := layer([]tarEntry{{Name: strings.TrimPrefix(binaryPath, "/"), Mode: 0o755, Data: binary}}, o.Epoch)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Epoch}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "imagebuild: CA certificates, non-root user " + strconv.Itoa(nonRootID) + ", /tmp",
		}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "imagebuild: " + binaryPath + " " + o.Version,
		}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Author = "ocbuild"
	cf.Config = v1.Config{
		User:       strconv.Itoa(nonRootID) + ":" + strconv.Itoa(nonRootID),
		Entrypoint: []string{binaryPath},
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=" + caBundlePath},
		Labels:     labels(o),
	}
	return mutate.ConfigFile(img, cf)
}

// assemble builds the index from already compiled binaries.
func assemble(o *options, binaries map[string]string) (*result, error) {
	caBundle, err := os.ReadFile(o.CABundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	base, err := baseLayer(caBundle, o.Epoch)
	if err != nil {
		return nil, err
	}
	res := &result{Binaries: binaries, Sizes: map[string]int64{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		key := platformKey(p)
		data, err := os.ReadFile(binaries[key])
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w", key, err)
		}
		img, err := platformImage(o, p, base, data)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", key, err)
		}
		if res.Sizes[key], err = compressedSize(img); err != nil {
			return nil, err
		}
		plat := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	res.Index = mutate.Annotations(idx, labels(o)).(v1.ImageIndex)
	return res, nil
}

// compressedSize is what a registry stores for the image: manifest, config
// and compressed layers.
func compressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	total := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}

// build compiles, assembles, writes the OCI layout and pushes, as asked.
func build(ctx context.Context, o *options) (*result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Version == "" {
		return nil, fmt.Errorf("no version")
	}
	if o.ModuleDir == "" {
		dir, err := moduleDir(ctx)
		if err != nil {
			return nil, err
		}
		o.ModuleDir = dir
	}
	if o.Revision == "" {
		if rev, err := run(ctx, o.ModuleDir, nil, "git", "rev-parse", "HEAD"); err == nil {
			o.Revision = rev
		}
	}
	if o.Epoch.IsZero() {
		e, err := defaultEpoch(ctx, o.ModuleDir)
		if err != nil {
			return nil, err
		}
		o.Epoch = e
	}
	if o.WorkDir == "" {
		tmp, err := os.MkdirTemp("", "ocbuild-imagebuild-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		o.WorkDir = tmp
	}
	binaries := map[string]string{}
	for _, p := range o.Platforms {
		bin, err := compile(ctx, o, p)
		if err != nil {
			return nil, err
		}
		binaries[platformKey(p)] = bin
	}
	res, err := assemble(o, binaries)
	if err != nil {
		return nil, err
	}
	digest, err := res.Index.Digest()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(res.Sizes))
	for k := range res.Sizes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(o.Log, "%-14s %6.2f MB compressed\n", k, float64(res.Sizes[k])/1e6)
	}
	fmt.Fprintf(o.Log, "index %s (version %s)\n", digest, o.Version)

	if o.Out != "" {
		if err := writeLayout(o.Out, res.Index, o.Version); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "wrote OCI layout %s\n", o.Out)
	}
	if o.Push != "" {
		ref, err := push(ctx, res.Index, o.Push, o.Insecure)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "pushed %s@%s\n", ref, digest)
	}
	return res, nil
}

// push uploads the index and everything it refers to, with credentials from
// the default keychain (docker config, credential helpers).
func push(ctx context.Context, idx v1.ImageIndex, reference string, insecure bool) (name.Reference, error) {
	var nameOpts []name.Option
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(reference, nameOpts...)
	if err != nil {
		return nil, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	return ref, nil
}

// writeLayout replaces dir with an OCI layout whose index.json names the
// multi-platform index by version, as `skopeo copy --all oci:DIR:VERSION` and
// `crane push DIR` expect.
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: version}))
}
