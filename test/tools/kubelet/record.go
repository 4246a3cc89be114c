package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// containerRecord is what the sandbox's executor writes for each container
// of its pods, at <pods-dir>/<namespace>/<pod>/containers/<container>.json
// (test/sandbox/executor.go, kubeletContainerRecord: the two must agree).
type containerRecord struct {
	PodUID string `json:"podUID"`
	// State is waiting, running or terminated.
	State string `json:"state"`
	// Log is the container's output, one line per record in the CRI log
	// format ("<RFC3339Nano> <stream> <F|P> <text>").
	Log string `json:"log"`
	// PID is the step process, leader of its process group, while running.
	PID int `json:"pid,omitempty"`
	// WorkingDir is the host directory the step runs in.
	WorkingDir string `json:"workingDir,omitempty"`
	// Paths are the step's container path prefixes and the host
	// directories they map to, longest first.
	Paths pathMap `json:"paths,omitempty"`
	// ImageCommands maps the step's command[0] to the binary its image
	// maps to (e.g. /ko-app/waiter → Shipwright's waiter).
	ImageCommands map[string]string `json:"imageCommands,omitempty"`
	StartedAt     time.Time         `json:"startedAt,omitzero"`
	FinishedAt    time.Time         `json:"finishedAt,omitzero"`
}

const (
	stateWaiting    = "waiting"
	stateRunning    = "running"
	stateTerminated = "terminated"
)

// errNoContainer is a container the executor has no record of.
type errNoContainer struct{ namespace, pod, container string }

func (e errNoContainer) Error() string {
	return fmt.Sprintf("container %q in pod %q (namespace %q) is not known to node sandbox", e.container, e.pod, e.namespace)
}

func (e errNoContainer) NotFound() bool { return true }

// readRecord reads a container's record.
func (k *kubelet) readRecord(namespace, pod, container string) (*containerRecord, error) {
	path := filepath.Join(k.podsDir, namespace, pod, "containers", container+".json")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, errNoContainer{namespace, pod, container}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of container %q of pod %s/%s: %w", container, namespace, pod, err)
	}
	var rec containerRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("reading the record of container %q of pod %s/%s: %w", container, namespace, pod, err)
	}
	return &rec, nil
}

// pathMap rewrites container path prefixes into host paths, exactly as the
// executor rewrites a step's arguments (test/sandbox/executor.go, pathMap:
// the two must agree).
type pathMap [][2]string

func isPathChar(c byte) bool {
	return c == '/' || c == '.' || c == '_' || c == '-' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// rewrite replaces every mapped path that starts a path (at the start or
// after a non-path character) and ends at a path component's end.
func (m pathMap) rewrite(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		replaced := false
		if s[i] == '/' && (i == 0 || !isPathChar(s[i-1])) {
			for _, kv := range m {
				from := kv[0]
				if !strings.HasPrefix(s[i:], from) {
					continue
				}
				end := i + len(from)
				if end == len(s) || s[end] == '/' || !isPathChar(s[end]) || strings.HasSuffix(from, "/") {
					b.WriteString(kv[1])
					i = end
					replaced = true
					break
				}
			}
		}
		if !replaced {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}
