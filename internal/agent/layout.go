package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// DefaultDataDir is K3s's --data-dir default. With it the agent uses K3s's system paths for
// what other tools look for there (/var/lib/kubelet, /var/log/pods, /run/k3s); with any other
// data dir everything the agent keeps lives below it, and its runtime state below a directory
// of /run/k3s named after it, so several agents can share one machine.
const DefaultDataDir = "/var/lib/rancher/k3s"

// Layout is where an agent keeps its files, by K3s's names.
type Layout struct {
	// Agent is <data-dir>/agent: kubeconfigs, certificates, configs.
	Agent string
	// Containerd is containerd's root (images, snapshots).
	Containerd string
	// ContainerdConfig is containerd's generated config.toml.
	ContainerdConfig string
	// Run is the agent's runtime directory: containerd's state and sockets.
	Run string
	// ContainerdState is containerd's state directory; the pods' network namespaces are
	// mounted below it too, so an agent's cleanup finds exactly its own.
	ContainerdState string
	// ContainerdSocket is the CRI and containerd API socket.
	ContainerdSocket string
	// CNIConfDir holds the CNI configuration the pod network writes.
	CNIConfDir string
	// CNIIPAM is host-local's state: the pod addresses handed out on this node.
	CNIIPAM string
	// Images holds the air-gap image tarballs imported at start.
	Images string
	// Kubelet is the kubelet's --root-dir.
	Kubelet string
	// PodLogs is the kubelet's podLogsDir.
	PodLogs string
	// PodManifests is the kubelet's staticPodPath.
	PodManifests string
	// Logs holds the node processes' log files.
	Logs string
}

// NewLayout returns the layout of an agent whose data dir is dataDir (absolute).
func NewLayout(dataDir string) Layout {
	agent := filepath.Join(dataDir, "agent")
	run, kubelet, podLogs, ipam := "/run/k3s", "/var/lib/kubelet", "/var/log/pods", "/var/lib/cni/networks"
	if filepath.Clean(dataDir) != DefaultDataDir {
		// Unix socket paths are limited to 108 bytes, so the runtime directory is named by a
		// short hash of the data dir rather than after it.
		sum := sha256.Sum256([]byte(filepath.Clean(dataDir)))
		run = filepath.Join("/run/k3s", hex.EncodeToString(sum[:4]))
		kubelet, podLogs = filepath.Join(agent, "kubelet"), filepath.Join(agent, "pod-logs")
		ipam = filepath.Join(agent, "cni", "networks")
	}
	state := filepath.Join(run, "containerd")
	return Layout{
		Agent:            agent,
		Containerd:       filepath.Join(agent, "containerd"),
		ContainerdConfig: filepath.Join(agent, "etc", "containerd", "config.toml"),
		Run:              run,
		ContainerdState:  state,
		ContainerdSocket: filepath.Join(state, "containerd.sock"),
		CNIConfDir:       filepath.Join(agent, "etc", "cni", "net.d"),
		CNIIPAM:          ipam,
		Images:           filepath.Join(agent, "images"),
		Kubelet:          kubelet,
		PodLogs:          podLogs,
		PodManifests:     filepath.Join(agent, "pod-manifests"),
		Logs:             filepath.Join(agent, "logs"),
	}
}
