package compose

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client rate limits. Neither a kubeconfig nor the in-cluster config carries them, and
// client-go's default (5 requests/s) would pace every controller: 1,000 new Nodes would wait
// over three minutes for their pod CIDRs. These are the embedded control plane's.
const (
	ClientQPS   = 200
	ClientBurst = 400
)

// LoadKubeconfig reads the kubeconfig at path and sets the client rate limits the controllers
// need.
func LoadKubeconfig(path string) (*rest.Config, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	restConfig.QPS, restConfig.Burst = ClientQPS, ClientBurst
	return restConfig, nil
}

// ClientConfig is --kubeconfig when set, else the pod's in-cluster config, with the client
// rate limits the controllers need.
func ClientConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		restConfig, err := LoadKubeconfig(kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig: %w", err)
		}
		return restConfig, nil
	}
	restConfig, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not in a pod: %w", err)
	}
	restConfig.QPS, restConfig.Burst = ClientQPS, ClientBurst
	return restConfig, nil
}
