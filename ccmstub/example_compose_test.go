package ccmstub_test

import (
	"context"
	"log"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/leader"
	"github.com/k3snet/k3snet/servicelb"
)

// README's "Composing controllers in your own binary" snippet, kept compiling here;
// internal/repocheck checks that the README shows it unchanged.
func run(ctx context.Context, cfg *rest.Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	lease := leader.Lease{Namespace: "kube-system", Name: "k3snet-cloud-controller", Identity: leader.Identity("")}
	// One replica leads at a time; each term starts new controllers on informers that
	// outlive the term. Returns when ctx ends, after releasing the Lease.
	leader.RunController(ctx, client, lease, factory, func(ctx context.Context, f informers.SharedInformerFactory) error {
		lb, err := servicelb.New(client, servicelb.Options{Namespace: "kube-system"})
		if err != nil {
			return err
		}
		stub, err := ccmstub.New(client, ccmstub.Options{LoadBalancer: lb}) // hosts ServiceLB, as K3s
		if err != nil {
			return err
		}
		return stub.Start(ctx, f) // registers informers, starts the factory, waits for the caches
	}, nil)
	return nil
}

// Example_withServiceLB runs the cloud-controller stub with ServiceLB as its load balancer under
// a Lease, as a K3s server does, until the context ends. (Compiled, not run: it needs a cluster.)
func Example_withServiceLB() {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"} // your cluster's, e.g. from clientcmd
	if err := run(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
}
