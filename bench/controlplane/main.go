// Command controlplane runs the control plane the tests run (internal/controlplane: kine,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok for the nodes annotated
// kwok.x-k8s.io/node=fake) until SIGTERM, for bench/kube-router-side-by-side.sh:
//
//	controlplane -data-dir DIR [-bind-address 172.16.0.1] [-port 6443] [-bin-dir DIR]
//
// Once ready it writes an admin kubeconfig that reaches the API server at the bind address
// to DIR/admin.kubeconfig and prints its path. Run it in a network namespace of its own with
// the bind address on a link to the nodes' namespaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/k3snet/k3snet/internal/controlplane"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		dataDir, binDir, bind string
		port                  int
	)
	flag.StringVar(&dataDir, "data-dir", "", "state of the control plane (required; reused if it exists)")
	flag.StringVar(&binDir, "bin-dir", os.Getenv("K3SNET_BIN_DIR"), "binaries of hack/build-tools.sh (default $K3SNET_BIN_DIR, else found from the checkout)")
	flag.StringVar(&bind, "bind-address", "127.0.0.1", "address kube-apiserver listens on")
	flag.IntVar(&port, "port", 6443, "kube-apiserver's secure port")
	flag.Parse()
	if err := serve(dataDir, binDir, bind, port); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		return 1
	}
	return 0
}

func serve(dataDir, binDir, bind string, port int) (err error) {
	if dataDir == "" {
		return errors.New("-data-dir is required")
	}
	addr, err := netip.ParseAddr(bind)
	if err != nil {
		return fmt.Errorf("-bind-address: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: dataDir, BinDir: binDir, APIServerPort: port, BindAddress: addr})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cp.Stop()) }()
	kubeconfig, err := cp.AdminKubeconfigFor("https://" + net.JoinHostPort(bind, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, "admin.kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return err
	}
	fmt.Println(path)
	<-ctx.Done()
	return nil
}
