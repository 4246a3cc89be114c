package sim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	imageclient "github.com/openshift/client-go/image/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ocbuild/ocbuild/test/sandbox"
	"github.com/ocbuild/ocbuild/test/sim/baseimage"
)

// Options configure the simulator.
type Options struct {
	// InstantiateBinaryTimeout is instantiatebinary's budget for creating
	// the build and waiting until it runs. Default: 5m (OpenShift's).
	InstantiateBinaryTimeout time.Duration
	// LogWaitTimeout is how long builds/log waits for a New or Pending
	// build to start. Default: 30s (OpenShift's).
	LogWaitTimeout time.Duration
	// Chaos is the initial fault injection (Sim.SetChaos changes it).
	Chaos Chaos
	// Seed seeds chaos's random choices. Default: 1.
	Seed uint64
	// Out receives the simulator's log (front door access log for the
	// build API, controller and executor messages). Default: the file
	// logs/simulator.log in the sandbox directory.
	Out io.Writer
	// BuildDefaults returns the cluster's build defaults environment
	// (OpenShift's build.config.openshift.io/cluster
	// spec.buildDefaults.env), given the started sandbox: every build's
	// environment gets each variable it does not set itself. E.g.
	// PackageIndexDefaults.
	BuildDefaults func(sb *sandbox.Sandbox) []corev1.EnvVar
}

// PackageIndexDefaults are build defaults that point pip at the sandbox's
// package index, as a platform points builds at its proxy or mirror.
func PackageIndexDefaults(sb *sandbox.Sandbox) []corev1.EnvVar {
	u, err := url.Parse(sb.PackageIndexURL)
	if err != nil {
		return nil
	}
	return []corev1.EnvVar{{Name: "PIP_INDEX_URL", Value: sb.PackageIndexURL}, {Name: "PIP_TRUSTED_HOST", Value: u.Hostname()}}
}

// Sim is the OpenShift Build API simulator. Plug it into the sandbox with
// sandbox.Options{FrontDoor: s.FrontDoor()}.
type Sim struct {
	opts  Options
	logs  Logs
	chaos *chaos
	stats *requestStats

	mu      sync.Mutex
	out     io.Writer
	outFile *os.File
	cancel  context.CancelFunc
	servers []*http.Server
	ctrlEnd chan struct{}
	stopped bool
}

// New returns a simulator; it starts when the sandbox calls its FrontDoor.
func New(o Options) *Sim {
	if o.InstantiateBinaryTimeout <= 0 {
		o.InstantiateBinaryTimeout = 5 * time.Minute
	}
	if o.LogWaitTimeout <= 0 {
		o.LogWaitTimeout = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return &Sim{opts: o, logs: NewLogs(), chaos: newChaos(o.Chaos, o.Seed), stats: newRequestStats()}
}

// SetChaos changes the fault injection while running.
func (s *Sim) SetChaos(c Chaos) { s.chaos.set(c) }

// Chaos returns the current fault injection.
func (s *Sim) Chaos() Chaos { return s.chaos.get() }

// Stats returns the number of requests the front door received per
// "<METHOD> <path pattern>" (METHOD is WATCH for watches; names are {ns}
// and {name}), e.g.
// "POST /apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs/{name}/instantiatebinary".
func (s *Sim) Stats() map[string]int64 { return s.stats.snapshot() }

// Arrivals are the first requests (up to 1000) since the last ResetStats,
// in the order they reached the front door.
func (s *Sim) Arrivals() []Arrival { return s.stats.arrivalsSoFar() }

// ResetStats zeroes the request counters.
func (s *Sim) ResetStats() { s.stats.reset() }

// Logs is the build log store shared by the front door and the executor.
func (s *Sim) Logs() Logs { return s.logs }

// FrontDoor returns the sandbox hook that starts the simulator: CRDs and
// strategy RBAC, admission webhooks, the seeded registry images, the build
// controller and executor, and the front door.
func (s *Sim) FrontDoor() sandbox.FrontDoorFunc {
	return func(ctx context.Context, sb *sandbox.Sandbox) (*sandbox.FrontDoor, error) {
		fd, err := s.start(ctx, sb)
		if err != nil {
			s.stop()
			return nil, err
		}
		return fd, nil
	}
}

func (s *Sim) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil {
		fmt.Fprintf(s.out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// lockedWriter serialises writes to the log.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *Sim) start(ctx context.Context, sb *sandbox.Sandbox) (*sandbox.FrontDoor, error) {
	out := s.opts.Out
	if out == nil {
		f, err := os.OpenFile(filepath.Join(sb.Dir, "logs", "simulator.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		s.outFile, out = f, f
	}
	var outMu sync.Mutex
	sharedOut := lockedWriter{mu: &outMu, w: out}
	s.mu.Lock()
	s.out = sharedOut
	s.mu.Unlock()

	cfg := rest.CopyConfig(sb.AdminConfig)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	builds, err := buildclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	images, err := imageclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	who, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("finding the admin identity: %w", err)
	}
	loopbackUser := who.Status.UserInfo.Username

	if err := InstallCRDs(ctx, cfg); err != nil {
		return nil, err
	}
	if err := InstallRBAC(ctx, kube); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()

	cert, err := newServingCert()
	if err != nil {
		return nil, err
	}
	access := sarChecker{kube: kube}
	whSrv, whURL, err := serveTLS(&admitter{access: access, loopbackUser: loopbackUser, secrets: impersonatingSecretLister(cfg), log: s.logf}, cert, "webhook server", s.logf)
	if err != nil {
		return nil, err
	}
	s.addServer(whSrv)
	if err := registerWebhooks(ctx, kube, whURL, cert.caPEM, "default"); err != nil {
		return nil, err
	}
	if err := sandbox.EnsureServiceAccounts(ctx, runCtx, kube, defaultServiceAccount, s.logf); err != nil {
		return nil, err
	}
	say := func(l string) { s.logf("%s", l); sb.Say(l) }
	// One apt-get run for what the builds need: buildah, and what the base
	// images are made with.
	missing := baseimage.Prerequisites()
	if _, err := exec.LookPath("buildah"); err != nil {
		missing = append(missing, "buildah")
	}
	if len(missing) > 0 {
		if err := sandbox.AptInstall(ctx, say, missing...); err != nil {
			return nil, err
		}
	}
	baseImages, err := baseimage.Build(ctx, baseimage.Options{
		CacheDir: filepath.Join(sb.CacheDir(), "images"),
		Log:      say,
	})
	if err != nil {
		return nil, fmt.Errorf("building the base images: %w", err)
	}
	if err := SeedImages(ctx, sb.Registry, baseImages); err != nil {
		return nil, fmt.Errorf("seeding the registry: %w", err)
	}

	var buildDefaults []corev1.EnvVar
	if s.opts.BuildDefaults != nil {
		buildDefaults = s.opts.BuildDefaults(sb)
	}
	workDir := filepath.Join(sb.Dir, "sim")
	sources := NewSources(filepath.Join(workDir, "sources"))
	ctrl := NewController(ControllerOptions{
		Config:             cfg,
		Logs:               s.logs,
		Sources:            sources,
		Registry:           sb.Registry,
		InsecureRegistries: []string{sb.AuthRegistry},
		GitURL:             sb.GitURL,
		Images:             images,
		WorkDir:            workDir,
		BuildDefaults:      buildDefaults,
		Out:                sharedOut,
	})
	end := make(chan struct{})
	s.mu.Lock()
	s.ctrlEnd = end
	s.mu.Unlock()
	go func() {
		defer close(end)
		if err := ctrl.Run(runCtx); err != nil && runCtx.Err() == nil {
			s.logf("build controller stopped: %v", err)
		}
	}()

	target, err := url.Parse(sb.APIServerURL)
	if err != nil {
		return nil, err
	}
	proxy, err := newProxy(target, sb.CAData, s.chaos, s.logf)
	if err != nil {
		return nil, err
	}
	fd := &frontDoor{
		kube:             kube,
		builds:           builds,
		authn:            newTokenReviewer(kube),
		access:           access,
		logs:             s.logs,
		sources:          sources,
		streams:          newImageStreams(images, sb.Registry),
		chaos:            s.chaos,
		stats:            s.stats,
		proxy:            proxy,
		binaryTimeout:    s.opts.InstantiateBinaryTimeout,
		logWaitTimeout:   s.opts.LogWaitTimeout,
		followCheck:      5 * time.Second,
		deliverFailGrace: 5 * time.Second,
		base:             runCtx,
		logf:             s.logf,
	}
	fdSrv, fdURL, err := serveTLS(fd, cert, "front door", s.logf)
	if err != nil {
		return nil, err
	}
	s.addServer(fdSrv)
	s.logf("simulator ready: front door %s, webhooks %s, loopback identity %q", fdURL, whURL, loopbackUser)
	return &sandbox.FrontDoor{URL: fdURL, CAData: cert.caPEM, Stop: s.stop}, nil
}

func (s *Sim) addServer(srv *http.Server) {
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
}

// stop stops the controller and the servers.
func (s *Sim) stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	cancel, servers, end := s.cancel, s.servers, s.ctrlEnd
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	for _, srv := range servers {
		_ = srv.Close()
	}
	if end != nil {
		select {
		case <-end:
		case <-time.After(15 * time.Second):
			s.logf("build controller did not stop within 15s")
		}
	}
	s.mu.Lock()
	if s.outFile != nil {
		_ = s.outFile.Close()
		s.outFile = nil
		s.out = nil
	}
	s.mu.Unlock()
}
