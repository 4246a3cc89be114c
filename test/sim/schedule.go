package sim

// Scheduling the build pod. OpenShift's build controller gives the pod the
// build's spec.nodeSelector plus kubernetes.io/os=linux
// (openshift-controller-manager pkg/build/controller/build/
// podcreationstrategy.go), and the scheduler binds it to a node whose
// labels match. A pod no node matches stays Pending, and so does its build:
// no reason, no message, no end (activeDeadlineSeconds counts from the
// pod's start, which an unscheduled pod never has). The simulator's one
// "pod" is the executor, so it waits here, on the cluster's real Node
// objects, until a node matches or the build is cancelled or deleted.

import (
	"context"
	"maps"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

// watchRetryDelay is the pause before listing the nodes again after an
// error.
const watchRetryDelay = 200 * time.Millisecond

// PodNodeSelector is the node selector of the pod of a build with
// nodeSelector: it, plus kubernetes.io/os=linux.
func PodNodeSelector(nodeSelector map[string]string) map[string]string {
	sel := maps.Clone(nodeSelector)
	if sel == nil {
		sel = map[string]string{}
	}
	sel[corev1.LabelOSStable] = "linux"
	return sel
}

// NodeFits tells whether the pod of a build with nodeSelector can be
// scheduled to n.
func NodeFits(n *corev1.Node, nodeSelector map[string]string) bool {
	return !n.Spec.Unschedulable && labels.SelectorFromSet(PodNodeSelector(nodeSelector)).Matches(labels.Set(n.Labels))
}

// awaitNode returns once a schedulable node matches b's pod node selector
// (at once, in the usual case), or false when ctx ends first.
func (c *Controller) awaitNode(ctx context.Context, b *buildv1.Build) bool {
	logged := false
	for ctx.Err() == nil {
		nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			if !sleepCtx(ctx, watchRetryDelay) {
				return false
			}
			continue
		}
		for i := range nodes.Items {
			if n := &nodes.Items[i]; NodeFits(n, b.Spec.NodeSelector) {
				if logged {
					c.logf("build %s/%s: its pod is scheduled to node %s", b.Namespace, b.Name, n.Name)
				}
				return true
			}
		}
		if !logged {
			c.logf("build %s/%s: Pending: 0/%d nodes match the pod's node selector {%s}", b.Namespace, b.Name, len(nodes.Items),
				labels.Set(PodNodeSelector(b.Spec.NodeSelector)))
			logged = true
		}
		w, err := c.kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: nodes.ResourceVersion})
		if err != nil {
			if !sleepCtx(ctx, watchRetryDelay) {
				return false
			}
			continue
		}
		nodeChanged(ctx, w)
		w.Stop()
	}
	return false
}

// nodeChanged returns at the watch's first event (any change may make a
// node match), its end, or ctx's.
func nodeChanged(ctx context.Context, w watch.Interface) {
	select {
	case <-ctx.Done():
	case <-w.ResultChan():
	}
}
