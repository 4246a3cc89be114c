package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// What the executor writes for the sandbox's kubelet (test/tools/kubelet),
// which serves pods/log, pods/exec and pods/attach from it: for every
// container of a pod, a record at
//
//	<executor dir>/.pods/<namespace>/<pod>/containers/<container>.json
//
// (.pods/<namespace>/<pod> is a symlink to the TaskRun's directory; no
// namespace name starts with a dot), and the container's output with a
// timestamp per line in the CRI log format the real kubelet reads,
// <TaskRun dir>/logs/<step>.cri, next to the plain <step>.log that StepLog
// reads.

// kubeletPodsDir is the directory the kubelet is given (--pods-dir).
func kubeletPodsDir(executorDir string) string { return filepath.Join(executorDir, ".pods") }

// kubeletContainerRecord is test/tools/kubelet's containerRecord: the two
// must agree.
type kubeletContainerRecord struct {
	PodUID     string `json:"podUID"`
	State      string `json:"state"` // waiting, running, terminated
	Log        string `json:"log"`
	PID        int    `json:"pid,omitempty"`
	WorkingDir string `json:"workingDir,omitempty"`
	// Paths are the step's container paths and the host directories they
	// are mapped to (pathMap), for exec's arguments.
	Paths pathMap `json:"paths,omitempty"`
	// ImageCommands maps the step's command[0] to the binary its image
	// maps to (e.g. /ko-app/waiter → Shipwright's waiter), for exec.
	ImageCommands map[string]string `json:"imageCommands,omitempty"`
	StartedAt     time.Time         `json:"startedAt,omitzero"`
	FinishedAt    time.Time         `json:"finishedAt,omitzero"`
}

// linkPod makes the pod's directory for the kubelet and records every
// container as waiting.
func (r *run) linkPod() error {
	link := filepath.Join(kubeletPodsDir(r.e.dir), r.pod.Namespace, r.pod.Name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	_ = os.Remove(link)
	if err := os.Symlink(r.dir, link); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "containers"), 0o755); err != nil {
		return err
	}
	for i := range r.ts.Steps {
		if err := r.writeContainerRecord(i, kubeletContainerRecord{State: "waiting"}); err != nil {
			return err
		}
	}
	return nil
}

// containerLogPath is step i's timestamped log.
func (r *run) containerLogPath(i int) string {
	return filepath.Join(r.dir, "logs", r.ts.Steps[i].Name+".cri")
}

// writeContainerRecord replaces step i's record (written whole, then
// renamed, so that the kubelet never reads half of one).
func (r *run) writeContainerRecord(i int, rec kubeletContainerRecord) error {
	rec.PodUID = string(r.podUID)
	rec.Log = r.containerLogPath(i)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := filepath.Join(r.dir, "containers", r.pod.Spec.Containers[i].Name+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing the kubelet's record of container %s: %w", r.pod.Spec.Containers[i].Name, err)
	}
	return os.Rename(tmp, path)
}

// terminateContainerRecords marks every container not yet terminated as
// terminated (the run is over), so that a follow of its log ends.
func (r *run) terminateContainerRecords() {
	if r.pod == nil || r.ts == nil {
		return
	}
	for i, c := range r.pod.Spec.Containers {
		b, err := os.ReadFile(filepath.Join(r.dir, "containers", c.Name+".json"))
		var rec kubeletContainerRecord
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.State != "terminated" {
			rec.State, rec.PID, rec.FinishedAt = "terminated", 0, time.Now()
			_ = r.writeContainerRecord(i, rec)
		}
	}
}

// containerOutput takes a step's stdout and stderr through one pipe (so
// their order is kept, as when both went to one file) and writes them to
// the plain log as they come and, line by line with the time each line
// ended, to the CRI log. Both streams are recorded as stdout.
type containerOutput struct {
	// W is the write end the step gets as stdout and stderr.
	W *os.File
	r *os.File

	mu      sync.Mutex
	plain   *os.File
	stamped *os.File
	partial []byte
	closed  bool
	drained chan struct{}
}

// maxLogLine is the longest line kept whole in the CRI log; longer ones are
// split into partial records, as containerd does (16 KiB).
const maxLogLine = 16 * 1024

func newContainerOutput(plain *os.File, stampedPath string) (*containerOutput, error) {
	stamped, err := os.OpenFile(stampedPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating the timestamped log: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		stamped.Close()
		return nil, fmt.Errorf("creating the output pipe: %w", err)
	}
	o := &containerOutput{W: w, r: r, plain: plain, stamped: stamped, drained: make(chan struct{})}
	return o, nil
}

// start copies the pipe to the logs; call it once the step has started
// (its copy of the write end is then the only one, so the read ends when
// the step and everything that inherited its output have exited).
func (o *containerOutput) start() {
	o.W.Close()
	go func() {
		defer close(o.drained)
		buf := make([]byte, 32*1024)
		for {
			n, err := o.r.Read(buf)
			if n > 0 {
				_, _ = o.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// Write writes p to both logs.
func (o *containerOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.plain.Write(p)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	data := append(o.partial, p...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(&out, "%s stdout F %s\n", now, data[:i])
		data = data[i+1:]
	}
	for len(data) >= maxLogLine {
		fmt.Fprintf(&out, "%s stdout P %s\n", now, data[:maxLogLine])
		data = data[maxLogLine:]
	}
	o.partial = append([]byte(nil), data...)
	if !o.closed {
		_, _ = o.stamped.Write(out.Bytes())
	}
	return n, err
}

// finish waits (at most grace) for the step's output to be read to its end.
func (o *containerOutput) finish(grace time.Duration) {
	select {
	case <-o.drained:
	case <-time.After(grace):
		// Something outside the step's process group still holds the
		// pipe: its later output is lost, as a container's would be.
		_ = o.r.SetReadDeadline(time.Now())
		o.r.Close()
		<-o.drained
	}
	o.r.Close()
}

// close writes what is left of a partial line and closes the timestamped
// log; later output goes to the plain log only.
func (o *containerOutput) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	if len(o.partial) > 0 {
		fmt.Fprintf(o.stamped, "%s stdout P %s\n", time.Now().UTC().Format(time.RFC3339Nano), o.partial)
		o.partial = nil
	}
	o.stamped.Close()
}
