package sandbox

import "testing"

func TestPathMapRewrite(t *testing.T) {
	m := pathMap{
		{"/tekton/results", "/h/tr/results"},
		{"/workspace", "/h/tr/workspace"},
		{"/tmp", "/h/tr/volumes/tmp"},
	}
	for in, want := range map[string]string{
		"/workspace":                        "/h/tr/workspace",
		"/workspace/source":                 "/h/tr/workspace/source",
		"--target=/workspace/source":        "--target=/h/tr/workspace/source",
		"/tekton/results/shp-error-reason":  "/h/tr/results/shp-error-reason",
		"/workspaces/x":                     "/workspaces/x",
		"/foo/workspace":                    "/foo/workspace",
		"a:/workspace:b":                    "a:/h/tr/workspace:b",
		"/tmp":                              "/h/tr/volumes/tmp",
		"/tmpfoo":                           "/tmpfoo",
		"cp /tmp/a /workspace/b":            "cp /h/tr/volumes/tmp/a /h/tr/workspace/b",
		"/tekton/home":                      "/tekton/home",
		"registry.local/workspace/image:v1": "registry.local/workspace/image:v1",
	} {
		if got := m.rewrite(in); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageRepository(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/ocbuild/ocbuild":               "ghcr.io/ocbuild/ocbuild",
		"ghcr.io/ocbuild/ocbuild:v0.1.0":        "ghcr.io/ocbuild/ocbuild",
		"ghcr.io/ocbuild/ocbuild@sha256:abc":    "ghcr.io/ocbuild/ocbuild",
		"ghcr.io/ocbuild/ocbuild:v1@sha256:abc": "ghcr.io/ocbuild/ocbuild",
		"localhost:5000/ocbuild":                "localhost:5000/ocbuild",
		"localhost:5000/ocbuild:latest":         "localhost:5000/ocbuild",
	} {
		if got := imageRepository(in); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", in, got, want)
		}
	}
}
