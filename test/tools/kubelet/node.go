package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

const (
	// leaseDuration and leaseRenewInterval are the real kubelet's defaults
	// (nodeLeaseDurationSeconds 40, renewed every quarter of it).
	leaseDuration      = 40 * time.Second
	leaseRenewInterval = 10 * time.Second
	// statusInterval is how often the Ready condition's heartbeat is
	// refreshed (the real kubelet: nodeStatusReportFrequency, 5 min).
	statusInterval = time.Minute
	nodeLeaseNS    = "kube-node-lease"
)

// node registers the Node and keeps its lease and Ready condition fresh.
type node struct {
	client  kubernetes.Interface
	name    string
	port    int
	version string
}

func (n *node) object() *corev1.Node {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods:   resource.MustParse("110"),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.name,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions:  []corev1.NodeCondition{n.ready(now, now)},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: n.name},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.port)}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          n.version,
				OperatingSystem:         runtime.GOOS,
				Architecture:            runtime.GOARCH,
				OSImage:                 "the sandbox host (steps are local processes)",
				ContainerRuntimeVersion: "sandbox://",
			},
		},
	}
}

func (n *node) ready(transition, heartbeat metav1.Time) corev1.NodeCondition {
	return corev1.NodeCondition{
		Type:               corev1.NodeReady,
		Status:             corev1.ConditionTrue,
		Reason:             "KubeletReady",
		Message:            "the sandbox's kubelet serves logs, exec and attach for the TaskRun executor's pods",
		LastHeartbeatTime:  heartbeat,
		LastTransitionTime: transition,
	}
}

// register creates the Node (or, after a restart, takes over the existing
// one) with its status: addresses, kubelet port, Ready.
func (n *node) register(ctx context.Context) error {
	want := n.object()
	created, err := n.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.name, err)
	}
	// The status is written on its own: a create may drop it.
	created.Status = want.Status
	if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the status of node %s: %w", n.name, err)
	}
	return n.renewLease(ctx, created.UID)
}

// heartbeat renews the lease and refreshes the Ready condition until ctx ends.
func (n *node) heartbeat(ctx context.Context) {
	lease := time.NewTicker(leaseRenewInterval)
	defer lease.Stop()
	status := time.NewTicker(statusInterval)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			nd, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err == nil {
				err = n.renewLease(ctx, nd.UID)
			}
			if err != nil && ctx.Err() == nil {
				log.Printf("renewing the lease of node %s: %v", n.name, err)
			}
		case <-status.C:
			if err := n.refreshReady(ctx); err != nil && ctx.Err() == nil {
				log.Printf("refreshing the Ready condition of node %s: %v", n.name, err)
			}
		}
	}
}

func (n *node) refreshReady(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		nd, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		found := false
		for i, c := range nd.Status.Conditions {
			if c.Type != corev1.NodeReady {
				continue
			}
			found = true
			transition := c.LastTransitionTime
			if c.Status != corev1.ConditionTrue {
				transition = now
			}
			nd.Status.Conditions[i] = n.ready(transition, now)
		}
		if !found {
			nd.Status.Conditions = append(nd.Status.Conditions, n.ready(now, now))
		}
		_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, nd, metav1.UpdateOptions{})
		return err
	})
}

func (n *node) renewLease(ctx context.Context, nodeUID types.UID) error {
	leases := n.client.CoordinationV1().Leases(nodeLeaseNS)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: n.name,
					// As the kubelet's: the lease goes with its Node.
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: nodeUID}},
				},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr.To(n.name),
					LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
					RenewTime:            &now,
				},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		l.Spec.RenewTime = &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
}

// memTotal is the host's memory, the Node's memory capacity.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
