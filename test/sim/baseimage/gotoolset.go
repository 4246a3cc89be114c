package baseimage

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// goRoot is where the toolchain goes in the go-toolset image.
const goRoot = "/usr/local/go"

// hostGo returns the machine's go command, its GOROOT and `go version`.
func hostGo(ctx context.Context) (goCmd, root, version string, err error) {
	goCmd, err = exec.LookPath("go")
	if err != nil {
		return "", "", "", fmt.Errorf("the go-toolset image copies this machine's Go toolchain: %w", err)
	}
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOROOT").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("go env GOROOT: %w", err)
	}
	root = strings.TrimSpace(string(out))
	out, err = exec.CommandContext(ctx, goCmd, "version").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("go version: %w", err)
	}
	return goCmd, root, strings.TrimSpace(string(out)), nil
}

// skipGoroot says what of GOROOT `go build` never needs: the test suite, the
// docs, the API files, misc/, every testdata directory and the standard
// library's tests.
func skipGoroot(rel string, d fs.DirEntry) bool {
	if d.IsDir() {
		switch rel {
		case "test", "doc", "api", "misc", "pkg/obj", "pkg/bootstrap":
			return true
		}
		return d.Name() == "testdata"
	}
	return strings.HasPrefix(rel, "src/") && strings.HasSuffix(rel, "_test.go")
}

func goToolsetRecipe() recipe {
	return recipe{
		name: GoToolset,
		refs: GoToolsetRefs,
		what: "the go-toolset S2I builder image",
		slow: "first run: ~10 s, copies this machine's Go toolchain",
		inputs: func(ctx context.Context, b *builder) (string, error) {
			_, root, version, err := hostGo(ctx)
			if err != nil {
				return "", err
			}
			return lines("image=go-toolset", "base="+b.keys[Base], "go version="+version, "goroot="+root,
				"scripts="+scriptsHash("s2i/go")), nil
		},
		build: buildGoToolset,
	}
}

// scriptsHash hashes the embedded S2I scripts under dir.
func scriptsHash(dir string) string {
	h := sha256.New()
	entries, _ := fs.ReadDir(scripts, dir)
	for _, e := range entries {
		data, _ := fs.ReadFile(scripts, path.Join(dir, e.Name()))
		fmt.Fprintf(h, "%s %d\n%s\n", e.Name(), len(data), data)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// s2iScripts writes the embedded scripts under dir to usr/libexec/s2i.
func s2iScripts(w *layerWriter, dir string) error {
	if err := w.dir("usr/libexec/s2i", 0o755, 0, 0); err != nil {
		return err
	}
	entries, err := fs.ReadDir(scripts, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(scripts, path.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := w.file("usr/libexec/s2i/"+e.Name(), 0o755, 0, 0, data); err != nil {
			return err
		}
	}
	return nil
}

func buildGoToolset(ctx context.Context, b *builder, stage string) (v1.Image, error) {
	_, root, version, err := hostGo(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "go")); err != nil {
		return nil, fmt.Errorf("GOROOT %s: %w", root, err)
	}
	w, err := newLayerWriter(filepath.Join(stage, "go.tar.gz"))
	if err != nil {
		return nil, err
	}
	err = func() error {
		if err := w.dir("opt", 0o755, 0, 0); err != nil {
			return err
		}
		if err := w.dir("opt/app-root", 0o775, 1001, 0); err != nil {
			return err
		}
		if err := w.dir("opt/app-root/src", 0o775, 1001, 0); err != nil {
			return err
		}
		if err := w.dir("usr/bin", 0o755, 0, 0); err != nil {
			return err
		}
		for _, t := range []string{"go", "gofmt"} {
			if err := w.symlink("usr/bin/"+t, goRoot+"/bin/"+t); err != nil {
				return err
			}
		}
		if err := s2iScripts(w, "s2i/go"); err != nil {
			return err
		}
		if err := w.dir("usr/local", 0o755, 0, 0); err != nil {
			return err
		}
		return w.tree(strings.TrimPrefix(goRoot, "/"), root, skipGoroot)
	}()
	if err != nil {
		w.abort()
		return nil, err
	}
	l, err := w.close(types.OCILayer)
	if err != nil {
		return nil, err
	}
	base := b.imgs[Base]
	bcf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	goVersion := goVersionOf(version)
	return assemble(base, []layerSpec{{l, "ocbuild baseimage: " + version + " at " + goRoot + " (from " + root + "), S2I scripts"}},
		func(cf *v1.ConfigFile) {
			cf.Config.User = "1001"
			cf.Config.WorkingDir = "/opt/app-root/src"
			cf.Config.Env = []string{
				"PATH=/opt/app-root/src/go/bin:/opt/app-root/src/bin:/opt/app-root/bin:" + goRoot + "/bin:" + basePath,
				"HOME=/opt/app-root/src",
				"APP_ROOT=/opt/app-root",
				"STI_SCRIPTS_PATH=/usr/libexec/s2i",
				"GOTOOLCHAIN=local",
				"GOPROXY=off",
				"CGO_ENABLED=0",
				"GO_VERSION=" + goVersion,
			}
			cf.Config.Cmd = []string{"/usr/libexec/s2i/usage"}
			cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
			cf.Config.Labels = mergeLabels(bcf.Config.Labels, s2iLabels("builder,golang,go"))
			cf.Config.Labels["name"] = "ocbuild/go-toolset"
			cf.Config.Labels["summary"] = "Go " + goVersion + " S2I builder of the ocbuild sandbox"
			cf.Config.Labels["io.k8s.display-name"] = "Go " + goVersion
			cf.Config.Labels["org.opencontainers.image.title"] = "ocbuild go-toolset"
			cf.Config.Labels["version"] = goVersion
		})
}

// goVersionOf returns "1.26.8" from "go version go1.26.8 linux/amd64".
func goVersionOf(version string) string {
	for _, f := range strings.Fields(version) {
		if strings.HasPrefix(f, "go1") {
			return strings.TrimPrefix(f, "go")
		}
	}
	return version
}
