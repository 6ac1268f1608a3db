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
//	k3slike --version          k3slike's, Go's and the control plane's Kubernetes versions
//
// Flags are K3s's (k3slike --help groups them as k3s server --help does), also read from
// K3s's config file and environment variables.
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

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	command := "server"
	if len(args) > 0 && (args[0] == "server" || args[0] == "agent" || args[0] == "killall") {
		command, args = args[0], args[1:]
	}
	if command == "server" && len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		writeVersion(os.Stdout)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch command {
	case "server":
		var cfg *config
		if cfg, err = parseFlags(args, hostSystem(), os.Stdout); err == nil {
			if ctx, err = startLogging(ctx, cfg); err == nil {
				err = serve(ctx, cfg)
			}
		}
	case "agent":
		var cfg *config
		if cfg, err = parseAgentFlags(args, hostSystem(), os.Stdout); err == nil {
			if ctx, err = startLogging(ctx, cfg); err == nil {
				err = runAgent(ctx, cfg)
			}
		}
	case "killall":
		ctx = klog.NewContext(ctx, klog.Background())
		err = killall(ctx, args)
	}
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3slike: %v\n", err)
		return 1
	}
	return 0
}

// startLogging applies the logging flags to klog, so the controllers' V(n) logs show at
// their verbosity, logs the settings parsing ignored, and claims the data dir.
func startLogging(ctx context.Context, cfg *config) (context.Context, error) {
	if err := logsapi.ValidateAndApply(cfg.logging, nil); err != nil {
		return ctx, fmt.Errorf("logging flags: %w", err)
	}
	for _, w := range cfg.warnings {
		klog.Warning(w)
	}
	home, _ := os.UserHomeDir()
	if err := claimDataDir(cfg.dataDir, defaultDataDir(os.Geteuid(), home)); err != nil {
		return ctx, err
	}
	// After ValidateAndApply: the logger of --logging-format at the verbosity of -v.
	return klog.NewContext(ctx, klog.Background()), nil
}
