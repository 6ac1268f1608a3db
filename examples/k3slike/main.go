// Command k3slike is the reference server of k3snet, with K3s's commands and flags:
//
//	k3slike [server] [flags]   an embedded control plane (kine, kube-apiserver, controller
//	                           manager, scheduler), k3snet's controllers behind K3s's disable
//	                           switches, and an agent on its own node (containerd, kubelet,
//	                           kube-proxy, pod network) unless --disable-agent
//	k3slike agent --server URL --token TOKEN [flags]
//	                           joins another node to a server
//	k3slike killall [--data-dir DIR]
//	                           removes what a stopped node left running: containers, mounts,
//	                           pod network and rules (k3s-killall.sh)
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

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	command := "server"
	if len(args) > 0 && (args[0] == "server" || args[0] == "agent" || args[0] == "killall") {
		command, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	var err error
	switch command {
	case "server":
		var cfg *config
		if cfg, err = parseFlags(args, os.Getenv, osHostname, os.Stderr); err == nil {
			err = serve(ctx, cfg)
		}
	case "agent":
		var cfg *config
		if cfg, err = parseAgentFlags(args, os.Getenv, osHostname, os.Stderr); err == nil {
			err = runAgent(ctx, cfg)
		}
	case "killall":
		err = killall(ctx, args)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3slike: %v\n", err)
		return 1
	}
	return 0
}
