// Command klipper-lb is the LB pod's forwarder: a drop-in for the rancher/klipper-lb
// image's entry script. It reads SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT and
// DEST_IPS, installs the forwarding rules in the pod's network namespace, and removes
// them on SIGTERM or SIGINT. Bad environment exits 2 with one line naming the
// variable and its value; a failure to install the rules exits 1.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/errline"
	"github.com/k3snet/k3snet/servicelb/forwarder"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadUsage = 2
)

func main() {
	os.Exit(run(context.Background(), os.LookupEnv, os.Stderr))
}

// run is main with its inputs passed in, so that it returns instead of exiting and
// its defers run.
func run(ctx context.Context, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	cfg, err := forwarder.ConfigFromEnv(lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "klipper-lb: invalid environment: %s\n", errline.Of(err))
		return exitBadUsage
	}
	fwd, err := forwarder.New(cfg, forwarder.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "klipper-lb: %s\n", errline.Of(err))
		return exitBadUsage
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	defer klog.Flush()
	ctx = klog.NewContext(ctx, klog.Background().WithName("klipper-lb"))

	if err := fwd.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "klipper-lb: %s\n", errline.Of(err))
		return exitFailed
	}
	return exitOK
}
