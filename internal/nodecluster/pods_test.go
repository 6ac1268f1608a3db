package nodecluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNsfsMountsFindsOneNodesPodNamespaces(t *testing.T) {
	const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw
400 22 0:4 net:[4026532999] /run/netns/fab-1 rw shared:200 - nsfs nsfs rw
401 22 0:4 net:[4026533001] /run/k3s/ab12cd34/containerd/netns/cni-1111 rw shared:201 - nsfs nsfs rw
402 22 0:4 net:[4026533002] /run/k3s/ab12cd34/containerd/netns/cni-2222 rw shared:202 - nsfs nsfs rw
403 22 0:4 net:[4026533003] /run/k3s/ff00ff00/containerd/netns/cni-3333 rw shared:203 - nsfs nsfs rw
404 22 0:52 / /run/k3s/ab12cd34/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm rw shared:204 - tmpfs shm rw
`
	tests := []struct {
		name string
		dir  string
		want []string
	}{
		{name: "the node's pod namespaces, not another node's nor other mounts", dir: "/run/k3s/ab12cd34/containerd",
			want: []string{"/run/k3s/ab12cd34/containerd/netns/cni-1111", "/run/k3s/ab12cd34/containerd/netns/cni-2222"}},
		{name: "a directory that only shares a prefix of the name", dir: "/run/k3s/ab12", want: nil},
		{name: "a node without pods", dir: "/run/k3s/00000000/containerd", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, nsfsMounts(mountinfo, tt.dir))
		})
	}
}
