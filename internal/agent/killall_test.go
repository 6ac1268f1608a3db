package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMountPointsBelowDirsDeepestFirst(t *testing.T) {
	info := `24 1 0:22 / / rw - ext4 /dev/vda rw
30 24 0:40 / /run/k3s/ab12/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs rw - overlay overlay rw
31 24 0:41 / /run/k3s/ab12/containerd/netns/cni-1 rw - nsfs nsfs rw
32 24 0:42 / /tmp/node\040a/agent/kubelet/pods/p/volumes/kube-api-access rw - tmpfs tmpfs rw
33 24 0:43 / /tmp/node\040a/agent/kubelet rw - ext4 /dev/vda rw
34 24 0:44 / /run/k3s/ab123/containerd/x rw - tmpfs tmpfs rw
35 24 0:45 / /tmp/node\040ab/agent rw - tmpfs tmpfs rw
`
	got := mountPoints(info, []string{"/run/k3s/ab12", "/tmp/node a/agent"})
	assert.Equal(t, []string{
		"/run/k3s/ab12/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs",
		"/tmp/node a/agent/kubelet/pods/p/volumes/kube-api-access",
		"/run/k3s/ab12/containerd/netns/cni-1",
		"/tmp/node a/agent/kubelet",
	}, got, "a sibling whose name only starts the same is not below the directory")
}

func TestTreesMatchingFindsShimsAndTheirContainers(t *testing.T) {
	procs := []process{
		{pid: 10, ppid: 1, cmdline: "/bin/containerd --config /tmp/a/agent/etc/containerd/config.toml"},
		{pid: 20, ppid: 1, cmdline: "/bin/containerd-shim-runc-v2 -namespace k8s.io -id x -address /run/k3s/aa/containerd/containerd.sock"},
		{pid: 21, ppid: 20, cmdline: "/pause"},
		{pid: 22, ppid: 20, cmdline: "/testserver serve"},
		{pid: 23, ppid: 22, cmdline: "sh"},
		{pid: 30, ppid: 1, cmdline: "/bin/containerd-shim-runc-v2 -namespace k8s.io -id y -address /run/k3s/bb/containerd/containerd.sock"},
		{pid: 31, ppid: 30, cmdline: "/pause"},
	}
	got := treesMatching(procs, []string{"/tmp/a/agent/etc/containerd/config.toml", "/run/k3s/aa/containerd/containerd.sock"})
	assert.Equal(t, []int{10, 20, 21, 22, 23}, got, "another node's shim (bb) is left alone")
}

func TestWithoutNodeRules(t *testing.T) {
	save := `*filter
:INPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:FLANNEL-FWD - [0:0]
:MY-CHAIN - [0:0]
-A FORWARD -m comment --comment "k3snet pod network" -j FLANNEL-FWD
-A FORWARD -j KUBE-ROUTER-FORWARD
-A MY-CHAIN -j ACCEPT
COMMIT
*nat
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -j CNI-HOSTPORT-DNAT
COMMIT
`
	assert.Equal(t, "*filter\n:INPUT ACCEPT [0:0]\n:MY-CHAIN - [0:0]\n-A MY-CHAIN -j ACCEPT\nCOMMIT\n*nat\nCOMMIT\n", withoutNodeRules(save))
}

func TestCgroupMounts(t *testing.T) {
	info := `24 1 0:22 / / rw - ext4 /dev/vda rw
25 24 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 25 0:25 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
`
	assert.Equal(t, []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}, cgroupMounts(info))
}

func TestShimSocketsAreNamedAsContainerdNamesThem(t *testing.T) {
	got := ShimSockets("/bin/containerd-shim-runc-v2 -namespace k8s.io -id abc -address /run/k3s/aa/containerd/containerd.sock")
	// sha256("/run/k3s/aa/containerd/containerd.sock/k8s.io/abc") and the same with "/debug".
	assert.Len(t, got, 2)
	assert.Regexp(t, `^/run/containerd/s/[0-9a-f]{64}$`, got[0])
	assert.NotEqual(t, got[0], got[1])
	assert.Nil(t, ShimSockets("/bin/containerd --config x"))
}
