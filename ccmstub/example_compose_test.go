package ccmstub_test

import (
	"context"
	"log"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/ccmstub"
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
	lb, err := servicelb.New(client, servicelb.Options{Namespace: "kube-system"})
	if err != nil {
		return err
	}
	stub, err := ccmstub.New(client, ccmstub.Options{LoadBalancer: lb}) // hosts ServiceLB, as K3s
	if err != nil {
		return err
	}
	if err := stub.Start(ctx, factory); err != nil { // registers informers, starts the factory, waits
		return err
	}
	<-ctx.Done()
	return nil
}

// Example_withServiceLB runs the cloud-controller stub with ServiceLB as its load balancer, as
// a K3s server does, until the context ends. (Compiled, not run: it needs a cluster.)
func Example_withServiceLB() {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"} // your cluster's, e.g. from clientcmd
	if err := run(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
}
