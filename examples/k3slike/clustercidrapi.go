package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/clustercidr/alphaapi"
	"github.com/k3snet/k3snet/internal/controlplane"
)

// alphaAPIAvailableTimeout bounds the wait for kube-apiserver to reach the v1alpha1 server at
// start; past it the server runs on and the APIService reports what is wrong.
const alphaAPIAvailableTimeout = time.Minute

// startClusterCIDRAlphaAPI serves ClusterCIDR as networking.k8s.io/v1alpha1, the version of
// K3s's documentation, through the embedded kube-apiserver's aggregation layer, when
// --multi-cluster-cidr makes ClusterCIDR objects matter. Otherwise it removes the
// registration an earlier run left. The returned stop ends the server and waits for it.
func startClusterCIDRAlphaAPI(ctx context.Context, cfg *config, cp *controlplane.ControlPlane, restConfig *rest.Config) (stop func(), err error) {
	stop = func() {}
	if cp == nil {
		return stop, nil // someone else's kube-apiserver: its aggregation layer is not ours to use
	}
	logger := klog.FromContext(ctx).WithName("clustercidr-v1alpha1")
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return stop, fmt.Errorf("clustercidr v1alpha1: %w", err)
	}
	reg := alphaapi.Registration{}
	if cfg.disableNodeIPAM || !cfg.multiClusterCIDR {
		return stop, alphaapi.Unregister(ctx, dyn, reg.Namespace, reg.Service)
	}
	ln, addr := listenForAggregator(alphaAPIAddresses(cfg))
	if ln == nil {
		logger.Info("No non-loopback address to serve networking.k8s.io/v1alpha1 ClusterCIDRs on; only networking.x-k8s.io/v1 is served")
		return stop, alphaapi.Unregister(ctx, dyn, reg.Namespace, reg.Service)
	}
	srv, err := alphaapi.New(alphaapi.Options{
		Upstream:                  restConfig,
		RequestHeaderCA:           cp.RequestHeaderCA,
		RequestHeaderAllowedNames: []string{controlplane.FrontProxyUser},
	})
	if err != nil {
		ln.Close()
		return stop, err
	}
	reg.Address, reg.Port = addr, ln.Addr().(*net.TCPAddr).Port
	cert, caPEM, err := alphaapi.ServingCert(reg.ServerName())
	if err != nil {
		ln.Close()
		return stop, fmt.Errorf("clustercidr v1alpha1: %w", err)
	}
	reg.CABundle = caPEM
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(serveCtx, ln, cert); err != nil {
			logger.Error(err, "networking.k8s.io/v1alpha1 server stopped")
		}
	}()
	stop = func() { cancel(); <-done }
	if err := alphaapi.Register(ctx, dyn, reg); err != nil {
		stop()
		return func() {}, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		stop()
		return func() {}, err
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, alphaAPIAvailableTimeout)
	defer cancelWait()
	if err := alphaapi.WaitAvailable(waitCtx, dyn, client.Discovery()); err != nil {
		logger.Error(err, "kube-apiserver does not reach the networking.k8s.io/v1alpha1 server yet")
	} else {
		logger.Info("Serving ClusterCIDR as networking.k8s.io/v1alpha1", "address", net.JoinHostPort(addr.String(), strconv.Itoa(reg.Port)))
	}
	return stop, nil
}

// alphaAPIAddresses are the addresses to serve v1alpha1 on, best first: the node's own
// address when it is a real node, else the host's. kube-apiserver dials it directly, and an
// EndpointSlice cannot name loopback. Only kube-apiserver's front-proxy certificate is
// accepted there.
func alphaAPIAddresses(cfg *config) []netip.Addr {
	var out []netip.Addr
	if !cfg.disableAgent {
		out = append(out, nodeInternalIPs(cfg)...)
	}
	return append(out, defaultNodeIP())
}

// listenForAggregator listens on a free port of the first of addrs that is not loopback and
// belongs to this host (a --node-ip of a simulated node may not).
func listenForAggregator(addrs []netip.Addr) (net.Listener, netip.Addr) {
	for _, addr := range addrs {
		if !addr.IsValid() || addr.IsLoopback() || addr.IsUnspecified() {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
		if err == nil {
			return ln, addr
		}
	}
	return nil, netip.Addr{}
}
