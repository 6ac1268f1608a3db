package netns

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// netnsDir is where `ip netns` keeps the bind mounts that name namespaces.
const netnsDir = "/run/netns"

// closeTimeout bounds `ip netns del`; Close has no context because it often runs
// in t.Cleanup, after the test's context is already canceled.
const closeTimeout = 30 * time.Second

// Namespace is a named network namespace created by New or NewT. It is safe
// for concurrent use; Close deletes it.
type Namespace struct {
	// name is the namespace's name under /run/netns, or a label for one made elsewhere.
	name string
	// path, when set, is the namespace's file, for a namespace someone else made (a pod's):
	// Close then leaves it alone.
	path string
	// closeOnce makes Close idempotent, so a caller's defer and t.Cleanup can both call it.
	closeOnce sync.Once
	// closeErr is the result of the first Close.
	closeErr error
}

// New creates a network namespace named prefix plus a random suffix, with lo
// up and IPv6 duplicate address detection off for the links to come. prefix
// is 1 to 8 letters, digits, '-' or '_'. The caller must Close it.
func New(ctx context.Context, prefix string) (*Namespace, error) {
	name, err := newName(prefix)
	if err != nil {
		return nil, err
	}
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("creating netns %s: %w", name, err)
	}
	n := &Namespace{name: name}
	if err := n.init(ctx); err != nil {
		return nil, joinClose(fmt.Errorf("creating netns %s: %w", name, err), n)
	}
	return n, nil
}

// init makes a fresh namespace usable at once, before any link exists in it.
func (n *Namespace) init(ctx context.Context) error {
	// Nothing answers on 127.0.0.1 or ::1 until lo is up, and tests expect it.
	if err := n.Link("lo").Up(ctx); err != nil {
		return err
	}
	// A new namespace copies the IPv4 settings of the machine's own, so a host that forwards
	// (any Kubernetes node does) would make every new namespace a router: a fresh namespace
	// does not forward until asked to (EnableForwarding).
	if err := n.SetSysctl("net.ipv4.ip_forward", "0"); err != nil {
		return err
	}
	// Links created later inherit "default". Without DAD their IPv6 link-local
	// addresses are usable at once; while one is tentative the kernel sends no
	// neighbour solicitation for forwarded packets, so a router namespace
	// silently drops the first second or two of routed IPv6 traffic.
	for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := n.SetSysctl(key, "0"); err != nil {
			return err
		}
	}
	return nil
}

// NewT is New for tests: it skips t when Require would, fails t if the
// namespace cannot be created, and deletes the namespace in t.Cleanup, so a
// failing test leaves nothing behind.
func NewT(t testing.TB, prefix string) *Namespace {
	t.Helper()
	Require(t)
	n, err := New(t.Context(), prefix)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("netns: %v", err)
		}
	})
	return n
}

// Name returns the namespace's name, as `ip netns` and `ip -n` know it.
func (n *Namespace) Name() string { return n.name }

// Path returns the namespace's bind mount, /run/netns/NAME.
func (n *Namespace) Path() string {
	if n.path != "" {
		return n.path
	}
	return filepath.Join(netnsDir, n.name)
}

// Open returns the network namespace at path (a bind mount, or /proc/<pid>/ns/net), made by
// someone else (a pod's, say), called label in messages. Do, Probe, Serve, SetSysctl and Exec
// work in it; Close does nothing, since the namespace is not ours to delete.
func Open(path, label string) (*Namespace, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("opening netns %s at %s: %w", label, path, err)
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		return nil, fmt.Errorf("opening netns %s: %s is not a namespace file", label, path)
	}
	return &Namespace{name: label, path: path}, nil
}

// String returns the namespace's name.
func (n *Namespace) String() string { return n.name }

// Close deletes the namespace, and with it every link, bridge, route, iptables
// rule, ipset and conntrack entry inside it. Sockets opened inside it keep the
// kernel object alive until they close, but its name is gone. Calling Close
// again returns the first result.
func (n *Namespace) Close() error {
	if n.path != "" {
		return nil
	}
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if _, err := run(ctx, "ip", "netns", "del", n.name); err != nil {
			n.closeErr = fmt.Errorf("deleting netns %s: %w", n.name, err)
		}
	})
	return n.closeErr
}

// joinClose closes c after err and returns both failures, so a half-built
// namespace is not leaked when a later setup step fails.
func joinClose(err error, c interface{ Close() error }) error {
	return errors.Join(err, c.Close())
}
