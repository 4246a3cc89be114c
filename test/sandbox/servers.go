package sandbox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func (sb *Sandbox) serve(handler http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	sb.servers = append(sb.servers, srv)
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), nil
}

// startRegistry serves go-containerregistry's in-memory registry over plain http.
func (sb *Sandbox) startRegistry(context.Context) error {
	logFile, err := os.Create(filepath.Join(sb.Dir, "logs", "registry.log"))
	if err != nil {
		return err
	}
	addr, err := sb.serve(registry.New(registry.Logger(log.New(logFile, "", log.LstdFlags))))
	if err != nil {
		return err
	}
	sb.Registry = addr
	return nil
}

// Credentials of the registry that requires them (AuthRegistry).
const (
	AuthRegistryUser     = "ocbuild"
	AuthRegistryPassword = "sandbox-registry-secret"
)

// startAuthRegistry serves a second in-memory registry that, like Harbor or
// Quay, answers 401 with a Basic challenge to any request without its
// credentials.
func (sb *Sandbox) startAuthRegistry(context.Context) error {
	logFile, err := os.Create(filepath.Join(sb.Dir, "logs", "auth-registry.log"))
	if err != nil {
		return err
	}
	reg := registry.New(registry.Logger(log.New(logFile, "", log.LstdFlags)))
	addr, err := sb.serve(requireBasicAuth(reg, AuthRegistryUser, AuthRegistryPassword))
	if err != nil {
		return err
	}
	sb.AuthRegistry = addr
	return nil
}

// requireBasicAuth answers 401 UNAUTHORIZED (the registry API's error body)
// unless the request carries user:password.
func requireBasicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if ok && subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ocbuild sandbox registry"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`+"\n")
	})
}

// AuthRegistryDockerConfig is a .dockerconfigjson with AuthRegistry's
// credentials, for a kubernetes.io/dockerconfigjson Secret.
func (sb *Sandbox) AuthRegistryDockerConfig() []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(AuthRegistryUser + ":" + AuthRegistryPassword))
	return []byte(fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q,"auth":%q}}}`, sb.AuthRegistry, AuthRegistryUser, AuthRegistryPassword, auth))
}

// gitEnv isolates git from the user's configuration and makes commits
// deterministic.
func gitEnv() []string {
	return append(minimalEnv(),
		"HOME="+os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=ocbuild sandbox",
		"GIT_AUTHOR_EMAIL=sandbox@ocbuild.invalid",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=ocbuild sandbox",
		"GIT_COMMITTER_EMAIL=sandbox@ocbuild.invalid",
		"GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
	)
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// startGitServer turns each directory under Options.Repos and MoreRepos into a repository
// with one deterministic commit on branch main (and Options.GitBranches), and serves them read-only
// with `git http-backend` behind net/http/cgi.
func (sb *Sandbox) startGitServer(context.Context) error {
	root := filepath.Join(sb.Dir, "git")
	work := filepath.Join(sb.Dir, "git-work")
	sb.RepoHeads = map[string]string{}
	from := map[string]string{} // repository name → its directory
	var names []string
	for _, dir := range append([]string{sb.opts.Repos}, sb.opts.MoreRepos...) {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if other, dup := from[e.Name()]; dup {
				return fmt.Errorf("git server: repository %q is in both %s and %s", e.Name(), other, dir)
			}
			from[e.Name()] = dir
			names = append(names, e.Name())
		}
	}
	for name := range sb.opts.GitBranches {
		if _, ok := from[name]; !ok {
			return fmt.Errorf("git branches of %q: the git server has no repository %q", name, name)
		}
	}
	for _, name := range names {
		wd := filepath.Join(work, name)
		if err := CopyTree(filepath.Join(from[name], name), wd); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"init", "-q", "-b", "main"},
			{"add", "-A"},
			{"commit", "-q", "--no-gpg-sign", "-m", "Sample repository " + name},
		} {
			if _, err := git(wd, args...); err != nil {
				return err
			}
		}
		for _, b := range sb.opts.GitBranches[name] {
			if _, err := git(wd, "branch", b); err != nil {
				return err
			}
		}
		head, err := git(wd, "rev-parse", "HEAD")
		if err != nil {
			return err
		}
		if _, err := git(work, "clone", "-q", "--bare", wd, filepath.Join(root, name+".git")); err != nil {
			return err
		}
		sb.RepoHeads[name] = head
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return err
	}
	h := &cgi.Handler{
		Path:   gitPath,
		Args:   []string{"http-backend"},
		Env:    append(gitEnv(), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1"),
		Stderr: io.Discard,
	}
	addr, err := sb.serve(h)
	if err != nil {
		return err
	}
	sb.GitURL = "http://" + addr
	return sb.writeGitAliases()
}

// writeGitAliases writes the steps' system git configuration with an
// insteadOf rule per Options.GitAliases entry.
func (sb *Sandbox) writeGitAliases() error {
	if len(sb.opts.GitAliases) == 0 {
		return nil
	}
	var cfg strings.Builder
	for _, u := range slices.Sorted(maps.Keys(sb.opts.GitAliases)) {
		name := sb.opts.GitAliases[u]
		if _, ok := sb.RepoHeads[name]; !ok {
			return fmt.Errorf("git alias %s: the git server has no repository %q", u, name)
		}
		fmt.Fprintf(&cfg, "[url %q]\n\tinsteadOf = %s\n", sb.GitRepoURL(name), u)
		if !strings.HasSuffix(u, ".git") {
			// The longest match wins: <URL>.git must not become
			// <name>.git.git.
			fmt.Fprintf(&cfg, "\tinsteadOf = %s.git\n", u)
		}
	}
	sb.gitConfig = filepath.Join(sb.Dir, "gitconfig")
	return os.WriteFile(sb.gitConfig, []byte(cfg.String()), 0o644)
}

// GitRepoURL is the clone URL of a sample repository.
func (sb *Sandbox) GitRepoURL(name string) string { return sb.GitURL + "/" + name + ".git" }

// CopyTree copies the files under src to dst, with mode 0644 or (if
// executable) 0755, as the git server's repositories get them.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		return os.WriteFile(target, b, mode)
	})
}
