// Package agent runs the node half of a K3s server or agent: containerd with runc and the CNI
// plugins, the kubelet and kube-proxy (iptables mode), each as a supervised child process
// configured the way K3s configures its embedded ones, and the air-gap image import K3s does
// at agent start (every tarball in <data-dir>/agent/images). The pod network itself (the bridge
// CNI configuration from the node's pod CIDRs, routes to other nodes) is internal/podnet's.
//
// Stopping an agent stops its processes but, as in K3s, leaves the pods running: containerd's
// shims live on, and a restarted agent finds them again. Killall removes everything an agent
// left behind (what k3s-killall.sh does).
package agent
