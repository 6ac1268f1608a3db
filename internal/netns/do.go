package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// threadNetns is the calling thread's own network namespace. /proc/self would
// name the thread group leader's, which can differ from a locked thread's.
const threadNetns = "/proc/thread-self/ns/net"

// Do runs fn on an OS thread switched into the namespace and returns fn's
// error. Sockets fn creates belong to the namespace for their whole life, so
// they can be used from any goroutine afterwards.
//
// fn runs on a goroutine of its own, locked to its thread: goroutines fn starts
// run in the caller's namespace, and fn must not call t.FailNow. If switching
// the thread back fails, the goroutine exits still locked, so the runtime
// destroys the thread instead of reusing it in the wrong namespace.
func (n *Namespace) Do(fn func() error) error {
	target, err := unix.Open(n.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening netns %s: %w", n.name, err)
	}
	defer unix.Close(target)

	// Stays the result if fn calls runtime.Goexit and never returns.
	result := fmt.Errorf("running in netns %s: function exited without returning", n.name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		result = runIn(target, n.name, fn)
	}()
	<-done
	return result
}

// runIn runs fn with the current goroutine's thread in the namespace open as
// target. It must run on a goroutine that ends when it returns.
func runIn(target int, name string, fn func() error) (err error) {
	runtime.LockOSThread()
	orig, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening current netns before entering %s: %w", name, err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", name, err)
	}
	defer func() {
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Deliberately still locked: see Do.
			err = errors.Join(err, fmt.Errorf("leaving netns %s: %w", name, rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// DialContext dials addr from inside the namespace, for a client (a rest.Config's Dial, an
// http.Transport) that runs in the caller's namespace but talks to a server in this one.
func (n *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}
