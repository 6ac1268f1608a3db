// Command k3snet runs k3snet's controllers on a cluster it did not start, as a Deployment and
// a DaemonSet do (deploy/ installs them):
//
//	k3snet controllers [flags]   the cluster-wide controllers (cloud-controller stub with
//	                             ServiceLB, pod CIDR allocation, packaged components and Helm),
//	                             each under a Lease of its own, so replicas stand by; every
//	                             replica applies its staged manifests, as K3s servers do
//	k3snet node [flags]          NetworkPolicy enforcement for the pods of $NODE_NAME and the
//	                             node's address annotations
//	k3snet uninstall [flags]     what the controllers do when k3snet is uninstalled, for an
//	                             administrator when they cannot
//	k3snet --version
//
// It only wires: every rule lives in the packages it runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "v0.1.0-dev"

const usage = "usage: k3snet controllers|node|uninstall [flags], or k3snet --version"

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	var err error
	switch command, args := args[0], args[1:]; command {
	case "--version", "-version", "version":
		fmt.Println("k3snet", version)
		return 0
	case "-h", "--help", "help":
		fmt.Println(usage)
		return 0
	case "controllers":
		err = controllersCommand(ctx, args)
	case "node":
		var cfg *nodeConfig
		if cfg, err = parseNodeFlags(args, os.Getenv, os.Stderr); err == nil {
			err = runNode(ctx, cfg)
		}
	case "uninstall":
		var cfg *uninstallConfig
		if cfg, err = parseUninstallFlags(args, os.Stderr); err == nil {
			err = runUninstall(ctx, cfg)
		}
	default:
		err = fmt.Errorf("unknown command %q; %s", command, usage)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3snet: %v\n", err)
		return 1
	}
	return 0
}
