// Command k3slike is the reference server of k3snet: K3s's server flags, an embedded control
// plane (kine, kube-apiserver, controller manager, scheduler, kwok) when no --kubeconfig is
// given, and k3snet's controllers behind K3s's disable switches. It only wires: every rule
// lives in the packages it runs.
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

func main() { os.Exit(run()) }

func run() int {
	cfg, err := parseFlags(os.Args[1:], os.Getenv, osHostname, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3slike: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := klog.Background()
	if err := serve(klog.NewContext(ctx, logger), cfg); err != nil {
		fmt.Fprintf(os.Stderr, "k3slike: %v\n", err)
		return 1
	}
	return 0
}
