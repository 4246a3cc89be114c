package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	buildv1alpha1 "github.com/shipwright-io/build/pkg/apis/build/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
)

// Shipwright's CRDs serve v1alpha1 and store v1beta1; the API server asks
// Shipwright's conversion webhook to translate between them. In a cluster
// the CRDs reach it through the Service shipwright-build/shp-build-webhook;
// the sandbox runs it as a child on loopback and points the CRDs at its URL
// instead, trusting the certificate the sandbox made for it.

// shipwrightGroup is the API group whose CRDs convert through the webhook.
const shipwrightGroup = "shipwright.io"

// shipwrightWebhook is where the conversion webhook serves.
type shipwrightWebhook struct {
	// ConvertURL is the https URL of its /convert endpoint.
	ConvertURL string
	// CAData is the PEM bundle that verifies its serving certificate.
	CAData []byte
}

// startShipwrightWebhook starts Shipwright's conversion webhook on a leased
// loopback port with a fresh serving certificate and returns once it
// answers /health over verified TLS. It needs nothing of the cluster, so it
// starts first and stops last, after the API server that calls it.
func (sb *Sandbox) startShipwrightWebhook(ctx context.Context) error {
	port, err := sb.port()
	if err != nil {
		return err
	}
	// The same generator kube-apiserver uses for its own self-signed
	// serving certificate (pki/apiserver): a leaf for 127.0.0.1 followed by
	// the CA that signed it.
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return fmt.Errorf("generating the webhook's serving certificate: %w", err)
	}
	certDir := filepath.Join(sb.Dir, "pki", "shipwright-webhook")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	args := []string{
		"--listen-address=" + loopback(port),
		"--tls-cert-file=" + certFile,
		"--tls-private-key-file=" + keyFile,
	}
	if _, err := sb.startChild("shipwright-webhook", sb.bins.ShipwrightWebhook, args, minimalEnv()); err != nil {
		return err
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		return fmt.Errorf("the webhook's serving certificate %s holds no PEM certificate", certFile)
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	base := "https://" + loopback(port)
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			return false, nil
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			lastErr = fmt.Errorf("GET /health: %s", resp.Status)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the webhook's /health at %s: %w (last: %v)\n%s", base, err, lastErr,
			tailFile(filepath.Join(sb.Dir, "logs", "shipwright-webhook.log"), 2000))
	}
	sb.shipwrightWebhook = &shipwrightWebhook{ConvertURL: base + "/convert", CAData: certPEM}
	return nil
}

// useShipwrightWebhook points a Shipwright CRD's conversion at the
// sandbox's webhook (its manifest names the in-cluster Service, which the
// sandbox does not have). Other CRDs are left as they are.
func (sb *Sandbox) useShipwrightWebhook(crd *apiextensionsv1.CustomResourceDefinition) {
	if crd.Spec.Group != shipwrightGroup {
		return
	}
	url := sb.shipwrightWebhook.ConvertURL
	crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook: &apiextensionsv1.WebhookConversion{
			ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: sb.shipwrightWebhook.CAData},
			ConversionReviewVersions: []string{"v1"},
		},
	}
}

// conversionProbeName names the object the conversion probe dry-runs.
const conversionProbeName = "sandbox-conversion-probe"

// waitShipwrightConversion returns once the API server converts Shipwright
// objects through the webhook both ways: a v1alpha1 ClusterBuildStrategy
// created as a dry run is converted to v1beta1 for storage and back to
// v1alpha1 for the answer. Nothing is stored, so no controller ever sees it.
func (sb *Sandbox) waitShipwrightConversion(ctx context.Context) error {
	probe := &buildv1alpha1.ClusterBuildStrategy{
		ObjectMeta: metav1.ObjectMeta{Name: conversionProbeName},
		Spec: buildv1alpha1.BuildStrategySpec{
			BuildSteps: []buildv1alpha1.BuildStep{{Container: corev1.Container{Name: "probe", Image: HostImage, Command: []string{"true"}}}},
		},
	}
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		got, err := sb.Shipwright.ShipwrightV1alpha1().ClusterBuildStrategies().Create(ctx, probe.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			lastErr = err
			return false, nil
		}
		if len(got.Spec.BuildSteps) != 1 || got.Spec.BuildSteps[0].Name != "probe" {
			lastErr = fmt.Errorf("the dry run answered spec.buildSteps %+v, want the probe's one step", got.Spec.BuildSteps)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		log := tailFile(filepath.Join(sb.Dir, "logs", "shipwright-webhook.log"), 2000)
		return fmt.Errorf("converting a v1alpha1 ClusterBuildStrategy through the webhook: %w (last: %v)\nshipwright-webhook.log:\n%s",
			err, lastErr, strings.TrimSpace(log))
	}
	return nil
}
