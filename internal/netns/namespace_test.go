package netns_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestNamespacesAreRemovedAfterwards(t *testing.T) {
	t.Parallel()
	netns.Require(t)
	tests := []struct {
		name string
		// create returns a namespace name that must be gone once it returns.
		create func(t *testing.T) string
	}{
		{
			name: "NewT deletes its namespace, with a veth, a bridge, rules and an ipset inside, when the test ends",
			create: func(t *testing.T) string {
				var name string
				t.Run("user", func(t *testing.T) {
					a, b := netns.NewT(t, "a"), netns.NewT(t, "b")
					_, _, err := a.AddVeth(t.Context(), "eth0", b, "eth0")
					require.NoError(t, err)
					_, err = a.AddBridge(t.Context(), "br0")
					require.NoError(t, err)
					_, err = a.Exec(t.Context(), "ipset", "create", "k3snet-test", "hash:ip")
					require.NoError(t, err)
					_, err = a.Exec(t.Context(), "iptables", "-A", "INPUT", "-m", "set", "--match-set", "k3snet-test", "src", "-j", "DROP")
					require.NoError(t, err)
					name = a.Name()
					assert.Contains(t, namespaceNames(t), name)
				})
				return name
			},
		},
		{
			name: "Close deletes a namespace made by New and a second Close returns nil",
			create: func(t *testing.T) string {
				ns, err := netns.New(t.Context(), "plain")
				require.NoError(t, err)
				assert.Contains(t, namespaceNames(t), ns.Name())
				require.NoError(t, ns.Close())
				require.NoError(t, ns.Close())
				return ns.Name()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.create(t)
			assert.NotContains(t, namespaceNames(t), name)
			_, err := os.Stat("/run/netns/" + name)
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

func TestNewRejectsPrefixesThatDoNotFitAnInterfaceName(t *testing.T) {
	t.Parallel()
	_, err := netns.New(context.Background(), "much-too-long")
	require.Error(t, err)
}

func TestNamespaceNamesFitAnInterfaceNameAndDiffer(t *testing.T) {
	t.Parallel()
	a, b := netns.NewT(t, "samename"), netns.NewT(t, "samename")
	assert.NotEqual(t, a.Name(), b.Name())
	assert.LessOrEqual(t, len(a.Name()), 15)
	assert.True(t, strings.HasPrefix(a.Name(), "samename-"), a.Name())
}

func TestDoRunsTheFunctionInsideTheNamespace(t *testing.T) {
	t.Parallel()
	ns := netns.NewT(t, "do")
	want := inode(t, ns.Path())
	var inside uint64
	require.NoError(t, ns.Do(func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		return nil
	}))
	assert.Equal(t, want, inside)
	assert.NotEqual(t, want, inode(t, "/proc/self/ns/net"), "the process itself must stay in its namespace")

	errBoom := assert.AnError
	assert.ErrorIs(t, ns.Do(func() error { return errBoom }), errBoom, "Do returns fn's error")
}

func TestExecRunsInsideTheNamespaceAndNamesFailingCommands(t *testing.T) {
	t.Parallel()
	ns := netns.NewT(t, "exec")
	out, err := ns.Exec(t.Context(), "ip", "-o", "link", "show")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, "\n"), "a new namespace has only lo:\n%s", out)
	assert.Contains(t, out, "lo:")

	_, err = ns.Exec(t.Context(), "iptables", "-A", "NO-SUCH-CHAIN", "-j", "DROP")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ip netns exec "+ns.Name()+" iptables -A NO-SUCH-CHAIN")
}

func TestSetSysctlChangesOnlyTheNamespace(t *testing.T) {
	t.Parallel()
	ns := netns.NewT(t, "sysctl")
	const key, path = "net.ipv4.icmp_ratelimit", "/proc/sys/net/ipv4/icmp_ratelimit"
	host, err := os.ReadFile(path)
	require.NoError(t, err)

	require.NoError(t, ns.SetSysctl(key, "2000"))
	out, err := ns.Exec(t.Context(), "cat", path)
	require.NoError(t, err)
	assert.Equal(t, "2000", strings.TrimSpace(out))
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(host), string(after), "host sysctl changed")
}

// inode returns the inode of path, which identifies a namespace file.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}
