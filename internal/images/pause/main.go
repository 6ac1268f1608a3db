// Command pause is the process of a pod sandbox, the image containerd runs first in every
// pod to hold its namespaces. It is the pod's PID 1 when the pod shares its process
// namespace, so it reaps the zombies that orphaned processes leave; otherwise it only
// waits. SIGINT and SIGTERM end it with status 0, as the kubelet stops a sandbox with them.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(func() {}))
}

// run waits for a stop signal, reaping children on every SIGCHLD, and returns the exit
// status. It calls ready once the signals are caught.
func run(ready func()) int {
	// A PID 1 gets no signal it has no handler for, so each one pause reacts to is caught.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	ready()
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		return 0
	}
	return 0
}

// reap collects every exited child. Signals coalesce, so one SIGCHLD may stand for many
// exits: it waits until none is left.
func reap() int {
	n := 0
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
