// Package cloudprovider adapts the ccmstub rules to k8s.io/cloud-provider's Interface, for forks
// of K3s that run the upstream cloud-controller-manager framework, as K3s itself does (its
// k3s-cloud-controller-manager registers a "k3s" cloud provider). It is the only k3snet package
// that imports k8s.io/cloud-provider.
//
// A fork registers the provider under its name and starts the upstream CCM with
// --cloud-provider=k3s:
//
//	cloudprovider.RegisterCloudProvider(ccmcloud.DefaultProviderName, ccmcloud.Factory(ccmcloud.Options{}))
//
// InstancesV2 serves ccmstub.NodeMetadata to the upstream cloud-node controller, which then sets
// the addresses, providerID and labels and removes the uninitialized taint. LoadBalancer follows
// K3s: the load balancers are ServiceLB's DaemonSets, made by a controller that watches Services
// itself (servicelb, or ccmstub.Controller hosting it), so EnsureLoadBalancer and
// UpdateLoadBalancer return cloudprovider.ImplementedElsewhere and the upstream service
// controller only manages its cleanup finalizer. Embedders that do not use the upstream framework
// run ccmstub.Controller instead, which reacts to annotation changes at once rather than at the
// framework's node-status-update-frequency.
package cloudprovider
