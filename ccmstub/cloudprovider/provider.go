package cloudprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cloudprovider "k8s.io/cloud-provider"

	"github.com/k3snet/k3snet/ccmstub"
)

// DefaultProviderName is K3s's provider name, the value of --cloud-provider; the provider's name
// is its program name, so RKE2's is "rke2".
const DefaultProviderName = ccmstub.DefaultProgram

// ErrAllDisabled is returned when both parts are off: K3s's factory refuses that configuration
// too ("all cloud-provider functionality disabled by config") and runs no CCM at all.
var ErrAllDisabled = errors.New("all cloud-provider functionality disabled by config")

// Options configures the provider. The zero value is K3s's default: both parts on, keys built
// from "k3s".
type Options struct {
	// Program is the name the annotation keys, the providerID scheme and the provider name are
	// built from: "k3s" (default) or "rke2".
	Program string
	// DisableNodes turns InstancesV2 off (K3s's nodeEnabled=false, --disable-cloud-controller).
	DisableNodes bool
	// DisableLoadBalancer turns LoadBalancer off (K3s's lbEnabled=false, --disable=servicelb).
	DisableLoadBalancer bool
}

// Provider implements cloudprovider.Interface on the ccmstub rules. Build it with New.
type Provider struct {
	keys ccmstub.Keys
	opts Options
}

var _ cloudprovider.Interface = (*Provider)(nil)

// New returns a Provider for opts, or ErrAllDisabled when both parts are off.
func New(opts Options) (*Provider, error) {
	keys := ccmstub.NewKeys(opts.Program)
	if err := keys.Validate(); err != nil {
		return nil, fmt.Errorf("ccmstub cloud provider: %w", err)
	}
	if opts.DisableNodes && opts.DisableLoadBalancer {
		return nil, fmt.Errorf("ccmstub cloud provider: %w", ErrAllDisabled)
	}
	opts.Program = keys.Program
	return &Provider{keys: keys, opts: opts}, nil
}

// cloudConfig holds the keys of K3s's cloud-config file that concern this provider (K3s writes
// that file as JSON despite its .yaml name); the others (lbImage, lbNamespace, ...) configure
// ServiceLB.
type cloudConfig struct {
	NodeEnabled *bool `json:"nodeEnabled"`
	LBEnabled   *bool `json:"lbEnabled"`
}

// Factory returns a cloudprovider.Factory for RegisterCloudProvider. The factory starts from
// defaults and applies nodeEnabled and lbEnabled from the --cloud-config file when one is
// given, so the file a K3s server writes keeps working; keys absent from it keep the defaults.
func Factory(defaults Options) cloudprovider.Factory {
	return func(config io.Reader) (cloudprovider.Interface, error) {
		opts := defaults
		if config != nil {
			var cfg cloudConfig
			if err := json.NewDecoder(config).Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("ccmstub cloud provider: reading the cloud config: %w", err)
			}
			if cfg.NodeEnabled != nil {
				opts.DisableNodes = !*cfg.NodeEnabled
			}
			if cfg.LBEnabled != nil {
				opts.DisableLoadBalancer = !*cfg.LBEnabled
			}
		}
		return New(opts)
	}
}

// Initialize does nothing: InstancesV2 needs no client, and the load balancer runs elsewhere.
func (p *Provider) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}

// LoadBalancer returns the ImplementedElsewhere load balancer unless DisableLoadBalancer is set.
// Returning one at all keeps the upstream service controller running, and so the
// service.kubernetes.io/load-balancer-cleanup finalizer managed, as in K3s.
func (p *Provider) LoadBalancer() (cloudprovider.LoadBalancer, bool) {
	if p.opts.DisableLoadBalancer {
		return nil, false
	}
	return loadBalancer{}, true
}

// Instances is not implemented: K3s dropped the V1 interface for InstancesV2 in 2022.
func (p *Provider) Instances() (cloudprovider.Instances, bool) { return nil, false }

// InstancesV2 returns the node part unless DisableNodes is set.
func (p *Provider) InstancesV2() (cloudprovider.InstancesV2, bool) {
	if p.opts.DisableNodes {
		return nil, false
	}
	return instances{keys: p.keys}, true
}

// Zones is not implemented: InstancesV2 reports zones, echoed from the node's labels.
func (p *Provider) Zones() (cloudprovider.Zones, bool) { return nil, false }

// Clusters is not implemented.
func (p *Provider) Clusters() (cloudprovider.Clusters, bool) { return nil, false }

// Routes is not implemented: the CNI routes pod traffic.
func (p *Provider) Routes() (cloudprovider.Routes, bool) { return nil, false }

// ProviderName returns the program name, "k3s" by default.
func (p *Provider) ProviderName() string { return p.opts.Program }

// HasClusterID returns false: like K3s, the provider does not tag resources with a cluster ID,
// and the framework then does not require one.
func (p *Provider) HasClusterID() bool { return false }
