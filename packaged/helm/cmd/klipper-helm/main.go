// Command klipper-helm is the pod of K3s's helm job: a drop-in for the rancher/klipper-helm
// image's entry script, on k3snet's Helm code (helm.RunJob). It reads the environment and the
// arguments K3s's helm-controller (or package helmjob) writes into the job, the values files
// at /config, an inline chart at /chart and credentials at /auth, /ca-files and Docker's
// config, and installs, upgrades or uninstalls the chart's release with the cluster's service
// account. SIGTERM and SIGINT are ignored, as in K3s, so Helm is never cut off mid-operation.
//
// Exit statuses: 0 done (or nothing to do), 1 failed (the Job retries), 2 bad environment or
// arguments, 64 HELM_VERSION=v2.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/errline"
	"github.com/k3snet/k3snet/packaged/helm"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadUsage = 2
	exitHelmV2   = 64
)

func main() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	home, _ := os.UserHomeDir()
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, rest.InClusterConfig, helm.DefaultJobPaths(home), os.Stdout, os.Stderr))
}

// run is main with its inputs passed in, so that it returns instead of exiting.
func run(ctx context.Context, args []string, getenv func(string) string, config func() (*rest.Config, error),
	paths helm.JobPaths, stdout, stderr io.Writer) int {
	defer klog.Flush()
	ctx = klog.NewContext(ctx, klog.Background().WithName("klipper-helm"))
	env, err := helm.JobEnvFrom(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "klipper-helm: invalid environment: %s\n", errline.Of(err))
		return exitBadUsage
	}
	jobArgs, err := helm.ParseJobArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "klipper-helm: %s\n", errline.Of(err))
		return exitBadUsage
	}
	if env.HelmVersion == "v2" { // refused before the cluster is reached, as K3s's job does
		fmt.Fprintf(stderr, "klipper-helm: %s\n", helm.ErrHelmV2)
		return exitHelmV2
	}
	cfg, err := config()
	if err != nil {
		fmt.Fprintf(stderr, "klipper-helm: reaching the API server: %s\n", errline.Of(err))
		return exitFailed
	}
	res, err := helm.RunJob(ctx, cfg, env, jobArgs, paths)
	if err != nil {
		fmt.Fprintf(stderr, "klipper-helm: %s/%s: %s\n", res.Namespace, res.Release, errline.Of(err))
		return exitFailed
	}
	if len(res.Unsupported) > 0 {
		fmt.Fprintf(stderr, "klipper-helm: k3snet's traefik chart ignores these values: %s\n", strings.Join(res.Unsupported, ", "))
	}
	fmt.Fprintf(stdout, "klipper-helm: release %s/%s: %s\n", res.Namespace, res.Release, res.Action)
	return exitOK
}
