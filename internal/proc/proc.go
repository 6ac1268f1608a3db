// Package proc runs the programs k3snet supervises (the control plane's components, and a
// node's containerd, kubelet and kube-proxy) as child processes with their output in a log
// file, and stops them: SIGTERM to the process group, SIGKILL after a grace period.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// stopTimeout is how long a process gets to exit after SIGTERM before it is killed.
const stopTimeout = 10 * time.Second

// Options are the optional settings of Start.
type Options struct {
	// Env is the process's environment; nil inherits ours.
	Env []string
	// Dir is the working directory; empty inherits ours.
	Dir string
}

// Process is one running program, its output going to a log file.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // exit status, valid after done
}

// Start runs bin with args, output appended to logDir/<name>.log. The process gets its own
// process group, so Stop reaches any children that stay in it, and is killed when the calling
// process dies, so a crashed parent leaves nothing running (a node's pods survive: containerd
// starts their shims in groups of their own).
func Start(name, bin string, args []string, logDir string, opts Options) (*Process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env, cmd.Dir = opts.Env, opts.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Name is the name the process was started with.
func (p *Process) Name() string { return p.name }

// LogPath is the file the process's output goes to.
func (p *Process) LogPath() string { return p.logPath }

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, with an error naming its exit status and log.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.logPath)
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits, then kills it. An exit caused by our own
// signal is not an error; calling Stop again does nothing.
func (p *Process) Stop() error {
	if done, _ := p.Exited(); done {
		return nil
	}
	pgid := -p.cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	<-p.done
	return nil
}
