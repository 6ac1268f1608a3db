package main

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/internal/compose"
)

// connect builds the client of --kubeconfig (else in-cluster) and checks that the API server
// answers, so a wrong address fails at start in one line.
func connect(kubeconfig string) (*rest.Config, kubernetes.Interface, string, error) {
	restConfig, err := compose.ClientConfig(kubeconfig)
	if err != nil {
		return nil, nil, "", err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, nil, "", fmt.Errorf("building the client: %w", err)
	}
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		return nil, nil, "", fmt.Errorf("reaching the API server at %s: %w", restConfig.Host, err)
	}
	return restConfig, client, version.GitVersion, nil
}

// afterSIGTERM is a context for the work a pod does once told to stop: ctx has ended, and the
// uninstall must still reach the API server within its grace period.
func afterSIGTERM(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), compose.UninstallTimeout)
}
