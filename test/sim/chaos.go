package sim

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Chaos configures fault injection at the front door. The zero value
// injects nothing. It can be changed while running (Sim.SetChaos).
type Chaos struct {
	// ErrorRate is the fraction of requests to /apis/build.openshift.io/…
	// (proxied and served) answered 503 ServiceUnavailable or 500
	// InternalError before anything is done.
	ErrorRate float64
	// WatchDropEvery closes proxied watches of build.openshift.io
	// resources after that long (the client must re-watch).
	WatchDropEvery time.Duration
	// LogCutRate is the fraction of builds/log streams cut after a random
	// number of lines (sometimes mid-line; sometimes a clean end of stream
	// as OpenShift gives on copy errors, sometimes a broken connection).
	LogCutRate float64
	// UntimestampedErrors makes clean log cuts end with the error text
	// OpenShift writes into the stream without a timestamp even when
	// timestamps=true was asked for ("error while getting build logs, …").
	UntimestampedErrors bool
	// LostAnswerRate is the fraction of successful requests that are
	// carried out but whose answer is lost: the client gets 500
	// InternalError or (half of the time) a broken connection instead.
	// It applies to
	//   - buildconfigs/instantiate: the lastVersion bump and Build <bc>-<n>
	//     are made;
	//   - buildconfigs/instantiatebinary: the Build is made, reaches
	//     Running and receives the whole body, as on a 201; then the
	//     answer is lost. The build is not auto-cancelled and runs on with
	//     that source (observed: "answered 500 after the build was created,
	//     build left Running");
	//   - BuildConfig writes (create, update, patch of buildconfigs,
	//     proxied to kube-apiserver; not dry runs): kube-apiserver stored
	//     the object.
	// Requests that fail anyway keep their own answer.
	LostAnswerRate float64
}

// chaos holds the current settings and a seeded random source.
type chaos struct {
	mu  sync.Mutex
	cfg Chaos
	rng *rand.Rand
}

func newChaos(cfg Chaos, seed uint64) *chaos {
	return &chaos{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (c *chaos) set(cfg Chaos) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
}

func (c *chaos) get() Chaos {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// failure decides whether to fail a request; it returns the error to answer
// or nil.
func (c *chaos) failure() *apierrors.StatusError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.ErrorRate <= 0 || c.rng.Float64() >= c.cfg.ErrorRate {
		return nil
	}
	if c.rng.IntN(2) == 0 {
		return apierrors.NewServiceUnavailable("the server is currently unable to handle the request (injected by the simulator's chaos mode)")
	}
	return apierrors.NewInternalError(errors.New("injected by the simulator's chaos mode"))
}

// errLostAnswer marks an answer lost by chaos (LostAnswerRate).
var errLostAnswer = errors.New("the request was carried out but its answer was lost (injected by the simulator's chaos mode)")

// lostAnswer decides whether to lose the answer of a request that was
// carried out; it returns the error to answer instead (nil: answer
// normally) and whether to break the connection rather than answer it.
func (c *chaos) lostAnswer() (*apierrors.StatusError, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.LostAnswerRate <= 0 || c.rng.Float64() >= c.cfg.LostAnswerRate {
		return nil, false
	}
	return apierrors.NewInternalError(errLostAnswer), c.rng.IntN(2) == 0
}

// loseAnswer answers a carried-out request as lostAnswer decided: a 500, or
// a broken connection (the handler is aborted; nothing is sent).
func loseAnswer(w http.ResponseWriter, st *apierrors.StatusError, drop bool) {
	if drop {
		panic(http.ErrAbortHandler)
	}
	writeStatus(w, st)
}

// isBuildConfigWrite reports a create, update or patch of a BuildConfig
// (not a subresource, not a dry run).
func isBuildConfigWrite(r *http.Request) bool {
	if r.URL.Query().Has("dryRun") {
		return false
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs[/{name}]
	if len(segs) < 6 || segs[0] != "apis" || segs[1] != Group || segs[2] != "v1" || segs[3] != "namespaces" || segs[5] != "buildconfigs" {
		return false
	}
	switch {
	case len(segs) == 6:
		return r.Method == http.MethodPost
	case len(segs) == 7:
		return r.Method == http.MethodPut || r.Method == http.MethodPatch
	}
	return false
}

// watchDrop returns how long a watch may run before it is dropped (0: not
// dropped) and whether the drop is a clean end of stream (else the
// connection breaks).
func (c *chaos) watchDrop() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.WatchDropEvery <= 0 {
		return 0, false
	}
	return c.cfg.WatchDropEvery, c.rng.IntN(2) == 0
}

// logCut is how one log stream is cut.
type logCut struct {
	afterLines int  // cut once this many complete lines were written
	partial    int  // then write this many bytes of the next line (0: none)
	clean      bool // end the response normally (else break the connection)
}

// logCut decides whether to cut a log stream; nil means never.
func (c *chaos) logCut() *logCut {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.LogCutRate <= 0 || c.rng.Float64() >= c.cfg.LogCutRate {
		return nil
	}
	cut := &logCut{afterLines: c.rng.IntN(12), clean: c.rng.IntN(2) == 0}
	if c.rng.IntN(2) == 0 {
		cut.partial = 1 + c.rng.IntN(40)
	}
	return cut
}

// isBuildAPI reports a path under /apis/build.openshift.io/.
func isBuildAPI(p string) bool { return strings.HasPrefix(p, "/apis/"+Group+"/") }

// isWatch reports a watch request.
func isWatch(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	switch strings.ToLower(r.URL.Query().Get("watch")) {
	case "true", "1":
		return true
	}
	return strings.Contains(r.URL.Path, "/watch/")
}

// errAbortStream breaks a proxied stream (the proxy turns a copy error into
// http.ErrAbortHandler).
var errAbortStream = errors.New("watch dropped by the simulator's chaos mode")

// droppingBody ends a proxied watch body after a delay: with io.EOF (clean)
// or with an error (broken connection).
type droppingBody struct {
	rc    io.ReadCloser
	clean bool
	timer *time.Timer

	mu      sync.Mutex
	dropped bool
}

func newDroppingBody(rc io.ReadCloser, after time.Duration, clean bool) *droppingBody {
	d := &droppingBody{rc: rc, clean: clean}
	d.timer = time.AfterFunc(after, func() {
		d.mu.Lock()
		d.dropped = true
		d.mu.Unlock()
		_ = rc.Close()
	})
	return d
}

func (d *droppingBody) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	if err != nil {
		d.mu.Lock()
		dropped := d.dropped
		d.mu.Unlock()
		if dropped {
			if d.clean {
				return n, io.EOF
			}
			return n, errAbortStream
		}
	}
	return n, err
}

func (d *droppingBody) Close() error {
	d.timer.Stop()
	return d.rc.Close()
}
