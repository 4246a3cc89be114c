package sim

// The front door: the https endpoint steps' kubeconfigs point at. It serves
// buildconfigs/instantiate, buildconfigs/instantiatebinary (instantiate.go),
// builds/log (buildlog.go), imagestreamtags and imagestreamimages
// (imageapi.go) itself, authenticating callers with
// TokenReview and authorising with SubjectAccessReview as OpenShift's API
// server does, and reverse-proxies everything else to kube-apiserver with
// the caller's credentials unchanged.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// ---------------------------------------------------------------------------
// TLS

// servingCert is a self-signed CA and a serving certificate it signed for
// 127.0.0.1 and localhost.
type servingCert struct {
	caPEM []byte
	cert  tls.Certificate
}

func newServingCert() (*servingCert, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ocbuild OpenShift Build API simulator CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &servingCert{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: nil},
	}, nil
}

// serveTLS serves h on a free loopback port (HTTP/2 enabled) and returns the
// server and its https base URL.
func serveTLS(h http.Handler, cert *servingCert, name string, logf func(string, ...any)) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(logfWriter(logf), name+": ", 0),
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("%s: %v", name, err)
		}
	}()
	return srv, "https://" + ln.Addr().String(), nil
}

// ---------------------------------------------------------------------------
// Status answers

// writeStatus answers with a Kubernetes Status.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"encoding the answer failed","code":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// statusFrom converts a client error into the Status to answer, without
// kube-apiserver's webhook denial prefix.
func statusFrom(err error) *apierrors.StatusError {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		st.Message = stripDenied(st.Message)
		return &apierrors.StatusError{ErrStatus: st}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return apierrors.NewTimeoutError(err.Error(), 0)
	}
	return apierrors.NewInternalError(err)
}

// ---------------------------------------------------------------------------
// Authentication and authorisation of the caller

// authenticator maps a request's credentials to a user.
type authenticator interface {
	authenticate(ctx context.Context, r *http.Request) (authenticationv1.UserInfo, *apierrors.StatusError)
}

// tokenReviewer authenticates bearer tokens with TokenReview, caching
// successes for a few seconds as OpenShift's token authenticator does.
type tokenReviewer struct {
	kube kubernetes.Interface
	ttl  time.Duration

	mu    sync.Mutex
	cache map[[32]byte]cachedUser
}

type cachedUser struct {
	user    authenticationv1.UserInfo
	expires time.Time
}

func newTokenReviewer(kube kubernetes.Interface) *tokenReviewer {
	return &tokenReviewer{kube: kube, ttl: 10 * time.Second, cache: map[[32]byte]cachedUser{}}
}

var anonymous = authenticationv1.UserInfo{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}

func (t *tokenReviewer) authenticate(ctx context.Context, r *http.Request) (authenticationv1.UserInfo, *apierrors.StatusError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return anonymous, nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return authenticationv1.UserInfo{}, apierrors.NewUnauthorized("Unauthorized")
	}
	key := sha256.Sum256([]byte(token))
	t.mu.Lock()
	c, hit := t.cache[key]
	t.mu.Unlock()
	if hit && time.Now().Before(c.expires) {
		return c.user, nil
	}
	tr, err := t.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, apierrors.NewInternalError(fmt.Errorf("authenticating the request: %w", err))
	}
	if !tr.Status.Authenticated {
		return authenticationv1.UserInfo{}, apierrors.NewUnauthorized("Unauthorized")
	}
	t.mu.Lock()
	if len(t.cache) > 10000 {
		t.cache = map[[32]byte]cachedUser{}
	}
	t.cache[key] = cachedUser{user: tr.Status.User, expires: time.Now().Add(t.ttl)}
	t.mu.Unlock()
	return tr.Status.User, nil
}

// forbidden is kube-apiserver's 403 for a denied resource request.
func forbidden(user authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes, reason string) *apierrors.StatusError {
	res := attrs.Resource
	if attrs.Subresource != "" {
		res += "/" + attrs.Subresource
	}
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", user.Username, attrs.Verb, res, attrs.Group, attrs.Namespace)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: attrs.Group, Resource: attrs.Resource}, attrs.Name, errors.New(msg))
}

// ---------------------------------------------------------------------------
// Request statistics

// requestStats counts requests per method and path pattern, and keeps
// when the first ones since the last reset arrived (the bench splits a
// client's overhead at them).
type requestStats struct {
	mu       sync.Mutex
	m        map[string]int64
	arrivals []Arrival
}

// Arrival is when a request reached the front door.
type Arrival struct {
	Key       string // as in Stats: "<METHOD> <pattern>"
	UserAgent string
	At        time.Time
}

// maxArrivals bounds the arrivals kept between resets.
const maxArrivals = 1000

func newRequestStats() *requestStats { return &requestStats{m: map[string]int64{}} }

func (s *requestStats) add(key, userAgent string) {
	now := time.Now()
	s.mu.Lock()
	s.m[key]++
	if len(s.arrivals) < maxArrivals {
		s.arrivals = append(s.arrivals, Arrival{Key: key, UserAgent: userAgent, At: now})
	}
	s.mu.Unlock()
}

func (s *requestStats) arrivalsSoFar() []Arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Arrival(nil), s.arrivals...)
}

func (s *requestStats) snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

func (s *requestStats) reset() {
	s.mu.Lock()
	s.m = map[string]int64{}
	s.arrivals = nil
	s.mu.Unlock()
}

// statsKey is "<METHOD> <pattern>", with WATCH for watches, e.g.
// "POST /apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs/{name}/instantiate".
func statsKey(r *http.Request) string {
	m := r.Method
	if isWatch(r) {
		m = "WATCH"
	}
	return m + " " + pathPattern(r.URL.Path)
}

// pathPattern replaces namespace and object names in an API path by {ns}
// and {name}.
func pathPattern(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var n int
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		n = 2
	case len(segs) >= 3 && segs[0] == "apis":
		n = 3
	default:
		return p
	}
	out := append([]string{}, segs[:n]...)
	rest := segs[n:]
	if len(rest) > 0 && rest[0] == "watch" {
		out, rest = append(out, "watch"), rest[1:]
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		if len(rest) == 2 {
			return "/" + strings.Join(append(out, "namespaces", "{name}"), "/")
		}
		out, rest = append(out, "namespaces", "{ns}"), rest[2:]
	}
	if len(rest) >= 1 {
		out = append(out, rest[0])
	}
	if len(rest) >= 2 {
		out = append(out, "{name}")
	}
	if len(rest) >= 3 {
		out = append(out, rest[2:]...)
	}
	return "/" + strings.Join(out, "/")
}

// ---------------------------------------------------------------------------
// The front door

type frontDoor struct {
	kube    kubernetes.Interface // admin: the loopback identity
	builds  buildclient.Interface
	authn   authenticator
	access  accessChecker
	logs    Logs
	sources Sources
	// streams serves the image API and resolves image references at
	// instantiate (nil: references stay as they are).
	streams *imageStreams
	chaos   *chaos
	stats   *requestStats
	proxy   http.Handler

	binaryTimeout  time.Duration // instantiatebinary's start budget
	logWaitTimeout time.Duration // builds/log's New/Pending wait
	followCheck    time.Duration // how often a follower checks that its build still exists
	// deliverFailGrace is how long a failed upload waits for the executor
	// to fail the build before the auto-cancel.
	deliverFailGrace time.Duration
	// base bounds the work instantiatebinary does for a client that may be
	// gone: the simulator's lifetime (nil: never ends).
	base context.Context
	logf func(format string, args ...any)
}

// baseContext is the context instantiatebinary works under instead of the
// request's.
func (f *frontDoor) baseContext() context.Context {
	if f.base != nil {
		return f.base
	}
	return context.Background()
}

// route is a request for one of the subresources the front door serves.
type route struct {
	namespace, resource, name, subresource string
}

// parseRoute recognises /apis/build.openshift.io/v1/namespaces/{ns}/{resource}/{name}/{subresource}.
func parseRoute(p string) (route, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) != 8 || segs[0] != "apis" || segs[1] != Group || segs[2] != "v1" || segs[3] != "namespaces" {
		return route{}, false
	}
	r := route{namespace: segs[4], resource: segs[5], name: segs[6], subresource: segs[7]}
	switch r.resource + "/" + r.subresource {
	case "buildconfigs/instantiate", "buildconfigs/instantiatebinary", "builds/log", "builds/clone":
		return r, r.namespace != "" && r.name != ""
	}
	return route{}, false
}

// statusRecorder records the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.stats.add(statsKey(r), r.UserAgent())
	buildAPI := isBuildAPI(r.URL.Path)
	if buildAPI {
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		start := time.Now()
		defer func() {
			f.logf("%s %s -> %d (%s)", r.Method, r.URL.RequestURI(), rec.code, time.Since(start).Round(time.Millisecond))
		}()
		if st := f.chaos.failure(); st != nil {
			writeStatus(w, st)
			return
		}
	}
	if irt, ok := parseImageRoute(r.URL.Path); ok {
		rec := &statusRecorder{ResponseWriter: w}
		defer f.logImageRequest(r, rec, time.Now())
		f.serveImageAPI(rec, r, irt)
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		f.proxy.ServeHTTP(w, r)
		return
	}
	want := http.MethodPost
	if rt.subresource == "log" {
		want = http.MethodGet
	}
	if r.Method != want {
		writeStatus(w, apierrors.NewMethodNotSupported(schema.GroupResource{Group: Group, Resource: rt.resource + "/" + rt.subresource}, strings.ToLower(r.Method)))
		return
	}
	switch rt.subresource {
	case "instantiate":
		f.serveInstantiate(w, r, rt.namespace, rt.name)
	case "instantiatebinary":
		f.serveInstantiateBinary(w, r, rt.namespace, rt.name)
	case "log":
		f.serveLog(w, r, rt.namespace, rt.name)
	case "clone":
		f.serveClone(w, r, rt.namespace, rt.name)
	}
}

// caller authenticates the request and authorises verb on
// resource/subresource of the build API; on failure it has answered and
// returns false.
func (f *frontDoor) caller(w http.ResponseWriter, r *http.Request, verb, resource, subresource, namespace, name string) (authenticationv1.UserInfo, bool) {
	return f.authorize(w, r, authorizationv1.ResourceAttributes{
		Namespace: namespace, Verb: verb, Group: Group, Resource: resource, Subresource: subresource, Name: name,
	})
}

// authorize authenticates the request and authorises attrs for the caller
// with a SubjectAccessReview; on failure it has answered and returns false.
func (f *frontDoor) authorize(w http.ResponseWriter, r *http.Request, attrs authorizationv1.ResourceAttributes) (authenticationv1.UserInfo, bool) {
	user, st := f.authn.authenticate(r.Context(), r)
	if st != nil {
		writeStatus(w, st)
		return user, false
	}
	allowed, reason, err := f.access.check(r.Context(), user, attrs)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("authorizing the request: %w", err)))
		return user, false
	}
	if !allowed {
		writeStatus(w, forbidden(user, attrs, reason))
		return user, false
	}
	return user, true
}

// newProxy reverse-proxies to the API server at target, trusting caPEM,
// flushing at once, dropping build.openshift.io watches under chaos and
// removing kube-apiserver's webhook denial prefix from build API errors.
func newProxy(target *url.URL, caPEM []byte, c *chaos, logf func(string, ...any)) (*httputil.ReverseProxy, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificates in the API server's CA bundle")
	}
	transport := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        200,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out = asJSONForTable(pr.In, pr.Out)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      log.New(logfWriter(logf), "proxy: ", 0),
		ModifyResponse: func(resp *http.Response) error {
			req := resp.Request
			if req == nil || !isBuildAPI(req.URL.Path) {
				return nil
			}
			if isBuildConfigWrite(req) && resp.StatusCode >= 200 && resp.StatusCode < 300 {
				if st, drop := c.lostAnswer(); st != nil {
					// Stored by kube-apiserver; the answer is lost.
					logf("chaos: %s %s carried out, answer lost (%s)", req.Method, req.URL.RequestURI(), lostHow(drop))
					if drop {
						return errLostAnswer // the ErrorHandler breaks the connection
					}
					replaceWithStatus(resp, st)
					return nil
				}
			}
			if isWatch(req) && resp.StatusCode == http.StatusOK {
				if after, clean := c.watchDrop(); after > 0 {
					resp.Body = newDroppingBody(resp.Body, after, clean)
				}
				return nil
			}
			if resp.StatusCode >= 400 && resp.Header.Get("Content-Encoding") == "" &&
				strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				return stripDeniedBody(resp)
			}
			return toTable(resp, time.Now())
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errLostAnswer) {
				panic(http.ErrAbortHandler)
			}
			if r.Context().Err() != nil {
				return // the client went away
			}
			logf("proxy %s %s: %v", r.Method, r.URL.RequestURI(), err)
			writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach the API server: %v", err)))
		},
	}, nil
}

// lostHow describes how a lost answer reaches the client.
func lostHow(drop bool) string {
	if drop {
		return "connection broken"
	}
	return "500 InternalError"
}

// replaceWithStatus replaces a proxied response by a Status answer.
func replaceWithStatus(resp *http.Response, se *apierrors.StatusError) {
	st := se.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	body, _ := json.Marshal(st)
	body = append(body, '\n')
	_ = resp.Body.Close()
	resp.StatusCode = int(st.Code)
	resp.Status = fmt.Sprintf("%d %s", st.Code, http.StatusText(int(st.Code)))
	resp.Header = http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(body))}}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
}

// logfWriter adapts logf to an io.Writer for log.Logger.
type logfWriter func(string, ...any)

func (l logfWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// stripDeniedBody rewrites a Status body without the webhook denial prefix.
func stripDeniedBody(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if msg := stripDenied(st.Message); msg != st.Message {
			st.Message = msg
			if b, err := json.Marshal(st); err == nil {
				body = append(b, '\n')
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
