package driver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var corev1ObjectReference = corev1.ObjectReference{Kind: "DockerImage", Name: "quay.io/team/legacy:latest"}

func newHTTPTestServer(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
