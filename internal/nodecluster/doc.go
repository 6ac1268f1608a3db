// Package nodecluster brings up a real multi-node cluster on one machine for tests: a k3slike
// server and agents, each a real node (containerd, runc, kubelet, kube-proxy, the bridge CNI,
// pods from the air-gap images) in a network namespace of its own, all on one bridge (the
// "fabric") in another namespace that plays the nodes' LAN. Nothing touches the machine's own
// network: the test talks to the API server and to the nodes from inside the fabric namespace.
// Names, ranges and cgroups are unique per cluster, so packages run side by side, and
// everything is torn down (with `k3slike killall` on every node) even when the test fails.
//
//	c := nodecluster.Start(t, nodecluster.Options{Agents: 2})
//	c.Kubectl(t, "create", "deployment", "web", "--image="+images.TestServerImage, ...)
//	client := c.Client(t)
package nodecluster
