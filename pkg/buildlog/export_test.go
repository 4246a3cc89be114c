package buildlog

import (
	buildv1 "github.com/openshift/api/build/v1"

	"github.com/ocbuild/ocbuild/pkg/buildwatch"
)

func setForTest(t *buildwatch.Tracker, b *buildv1.Build) { buildwatch.SetForTest(t, b) }
