package baseimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// hostBusybox is Debian's busybox-static binary.
const hostBusybox = "/bin/busybox"

// basePath is the PATH of the base image.
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const (
	passwd = `root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
default:x:1001:0:Default Application User:/opt/app-root/src:/bin/sh
`
	group = `root:x:0:
nobody:x:65534:
`
)

func baseRecipe() recipe {
	return recipe{
		name: Base,
		refs: BaseRefs,
		what: "the base image (busybox)",
		slow: "first run: ~1 s",
		inputs: func(ctx context.Context, b *builder) (string, error) {
			bin, err := os.ReadFile(hostBusybox)
			if err != nil {
				return "", fmt.Errorf("%w (install Debian's busybox-static)", err)
			}
			if !isStatic(hostBusybox) {
				return "", fmt.Errorf("%s is not statically linked (install Debian's busybox-static, not busybox)", hostBusybox)
			}
			return lines("image=base", fmt.Sprintf("busybox=%x", sha256.Sum256(bin)), "passwd="+passwd, "group="+group), nil
		},
		build: buildBase,
	}
}

// busyboxApplets lists the applets of the host's busybox.
func busyboxApplets(ctx context.Context) ([]string, string, error) {
	out, err := exec.CommandContext(ctx, hostBusybox, "--list").Output()
	if err != nil {
		return nil, "", fmt.Errorf("%s --list: %w", hostBusybox, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	banner, _ := exec.CommandContext(ctx, hostBusybox).Output() // exits 0 with its usage
	version := "BusyBox"
	if first, _, _ := bytes.Cut(banner, []byte("\n")); bytes.HasPrefix(first, []byte("BusyBox v")) {
		version, _, _ = strings.Cut(string(first), " multi-call")
	}
	return applets, version, nil
}

func buildBase(ctx context.Context, b *builder, stage string) (v1.Image, error) {
	applets, version, err := busyboxApplets(ctx)
	if err != nil {
		return nil, err
	}
	w, err := newLayerWriter(filepath.Join(stage, "base.tar.gz"))
	if err != nil {
		return nil, err
	}
	osRelease := fmt.Sprintf(`NAME="ocbuild base"
ID=ocbuild-base
VERSION_ID=1
PRETTY_NAME="ocbuild sandbox base image (%s)"
HOME_URL="https://github.com/ocbuild/ocbuild"
`, version)
	steps := []func() error{
		func() error { return w.dir("bin", 0o755, 0, 0) },
		func() error { return w.hostFile("bin/busybox", hostBusybox, 0o755) },
		func() error {
			for _, a := range applets {
				if err := w.symlink("bin/"+a, "/bin/busybox"); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return w.dir("dev", 0o755, 0, 0) },
		func() error { return w.dir("etc", 0o755, 0, 0) },
		func() error { return w.file("etc/group", 0o644, 0, 0, []byte(group)) },
		func() error {
			return w.file("etc/nsswitch.conf", 0o644, 0, 0, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
		},
		func() error { return w.file("etc/os-release", 0o644, 0, 0, []byte(osRelease)) },
		func() error { return w.file("etc/passwd", 0o644, 0, 0, []byte(passwd)) },
		func() error { return w.dir("home", 0o755, 0, 0) },
		func() error { return w.dir("proc", 0o555, 0, 0) },
		func() error { return w.dir("root", 0o700, 0, 0) },
		func() error { return w.dir("sys", 0o555, 0, 0) },
		func() error { return w.dir("tmp", 0o1777, 0, 0) },
		func() error { return w.dir("usr/bin", 0o755, 0, 0) },
		func() error { return w.dir("usr/local/bin", 0o755, 0, 0) },
		func() error { return w.dir("usr/sbin", 0o755, 0, 0) },
		func() error { return w.dir("var/tmp", 0o1777, 0, 0) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			w.abort()
			return nil, err
		}
	}
	l, err := w.close(types.OCILayer)
	if err != nil {
		return nil, err
	}
	return assemble(nil, []layerSpec{{l, "ocbuild baseimage: " + version + " with its applets, /etc/passwd, /etc/group, /tmp"}},
		func(cf *v1.ConfigFile) {
			cf.Config.Env = []string{"PATH=" + basePath}
			cf.Config.Cmd = []string{"/bin/sh"}
			cf.Config.Labels = map[string]string{
				"name":                           "ocbuild/base",
				"summary":                        "Minimal shell image of the ocbuild sandbox: " + version,
				"org.opencontainers.image.title": "ocbuild base",
			}
		})
}
