package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// kubeletPKI is the TLS between kube-apiserver and the sandbox's kubelet,
// verified both ways: a CA of its own signs the kubelet's serving
// certificate (127.0.0.1) and kube-apiserver's client certificate.
type kubeletPKI struct {
	CA, ServingCert, ServingKey, ClientCert, ClientKey string
}

// writeKubeletPKI writes the kubelet's CA and certificates into dir.
func writeKubeletPKI(dir string) (*kubeletPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &kubeletPKI{
		CA:          filepath.Join(dir, "ca.crt"),
		ServingCert: filepath.Join(dir, "kubelet.crt"),
		ServingKey:  filepath.Join(dir, "kubelet.key"),
		ClientCert:  filepath.Join(dir, "apiserver-kubelet-client.crt"),
		ClientKey:   filepath.Join(dir, "apiserver-kubelet-client.key"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the kubelet CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sandbox-kubelet-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the kubelet CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	leaf := func(serial int64, tmpl *x509.Certificate, certPath, keyPath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generating a key for %s: %w", tmpl.Subject.CommonName, err)
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(10*365*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("creating the certificate of %s: %w", tmpl.Subject.CommonName, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(keyPath, "EC PRIVATE KEY", keyDER, 0o600)
	}
	if err := leaf(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: NodeName},
		DNSNames:    []string{NodeName, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, p.ServingCert, p.ServingKey); err != nil {
		return nil, err
	}
	if err := leaf(3, &x509.Certificate{
		// kubeadm's name for kube-apiserver's kubelet client.
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, p.ClientCert, p.ClientKey); err != nil {
		return nil, err
	}
	return p, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// kubeletAPIServerFlags are kube-apiserver's flags to reach the kubelet.
func (p *kubeletPKI) apiServerFlags() []string {
	return []string{
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=" + p.CA,
		"--kubelet-client-certificate=" + p.ClientCert,
		"--kubelet-client-key=" + p.ClientKey,
	}
}

// startKubelet starts the sandbox's kubelet (test/tools/kubelet) and waits
// until it has registered node "sandbox", Ready, with its port.
func (sb *Sandbox) startKubelet(ctx context.Context) error {
	port, err := sb.port()
	if err != nil {
		return err
	}
	args := []string{
		"--node-name=" + NodeName,
		"--port=" + strconv.Itoa(port),
		"--kubeconfig=" + sb.KubeconfigPath,
		"--tls-cert-file=" + sb.kubeletPKI.ServingCert,
		"--tls-private-key-file=" + sb.kubeletPKI.ServingKey,
		"--client-ca-file=" + sb.kubeletPKI.CA,
		"--pods-dir=" + kubeletPodsDir(sb.executorDir()),
		"--kubelet-version=" + KubernetesVersion,
	}
	if _, err := sb.startChild("kubelet", sb.bins.Kubelet, args, minimalEnv()); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := sb.Err(); err != nil {
			return false, err
		}
		n, err := sb.Kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil || n.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(port) {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}
