// Package controlplane runs a real Kubernetes control plane on loopback from binaries built by
// hack/build-tools.sh: kine (SQLite) as the datastore, served on a unix socket only its owner
// can reach, kube-apiserver with its own CA and client-certificate users,
// kube-controller-manager, kube-scheduler, and kwok simulating the nodes annotated
// kwok.x-k8s.io/node=fake. Integration tests use it through internal/testcluster;
// examples/k3slike uses it as its embedded control plane, with state kept in its data dir.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/internal/proc"
)

// KwokNodeAnnotation marks the Nodes kwok simulates: kwok keeps them Ready and runs their pods.
const (
	KwokNodeAnnotation      = "kwok.x-k8s.io/node"
	KwokNodeAnnotationValue = "fake"
)

// kineSocket is the unix socket kine serves the etcd API on, in the 0700 database directory,
// so only this user reaches the datastore: kine has no authentication of its own, and on a
// TCP port any local process could read and write every object, Secrets included. K3s serves
// its embedded kine the same way (unix://kine.sock relative to its data directory).
const kineSocket = "kine.sock"

// readyTimeout bounds the wait for each component; a cold kube-apiserver on kine is ready in
// about 5 s on the 2-core machines this runs on.
const readyTimeout = 90 * time.Second

// Config describes a control plane. DataDir is the only required field.
type Config struct {
	// DataDir holds tls/, cred/, db/ (the database and kine's socket, owner only) and logs/
	// (for k3slike: <data-dir>/server); a relative path is made absolute. Existing
	// certificates and the database are reused, so a restart keeps the cluster.
	DataDir string
	// BinDir holds the binaries; empty means FindBinDir.
	BinDir string
	// APIServerPort is kube-apiserver's secure port on 127.0.0.1; 0 picks a free one.
	APIServerPort int
	// ServiceCIDR is the Service ClusterIP range (K3s default 10.43.0.0/16), or one range per
	// family, comma-separated, primary first, for a dual-stack cluster.
	ServiceCIDR string
	// PodCIDR is the range kwok gives pods of nodes that have no spec.podCIDR.
	PodCIDR string
	// AdvertiseAddress is the address kube-apiserver publishes as the kubernetes Service's
	// endpoint, so that pods and other nodes reach it (a real node's address). Invalid (the
	// zero value) means no endpoint published: nothing outside this machine reaches that
	// control plane unless BindAddress opens it.
	AdvertiseAddress netip.Addr
	// BindAddress is the address kube-apiserver listens on (K3s's --bind-address). Invalid
	// means 0.0.0.0 with an AdvertiseAddress and 127.0.0.1 without.
	BindAddress netip.Addr
	// ServingNames and ServingIPs are extra DNS names and addresses the serving certificate
	// carries (the node's name and addresses, K3s's --tls-san). The certificate is reissued,
	// by the same CA, when they change.
	ServingNames []string
	ServingIPs   []netip.Addr
	// ServiceNodePortRange is kube-apiserver's --service-node-port-range ("30000-32767");
	// empty means kube-apiserver's default, which is K3s's.
	ServiceNodePortRange string
	// ExtraControllerManagerArgs are appended to kube-controller-manager's arguments
	// ("--name=value"), so they win over k3slike's own (K3s's --kube-controller-manager-arg).
	ExtraControllerManagerArgs []string
	// DisableKwok runs no kwok: every node has a real kubelet.
	DisableKwok bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Config is the admin rest config (client certificate in group system:masters).
	Config *rest.Config
	// AdminKubeconfig is the path of a kubeconfig file for the admin user.
	AdminKubeconfig string
	// URL is kube-apiserver's address.
	URL string
	// RequestHeaderCA is the PEM of the CA of kube-apiserver's front-proxy client
	// certificate (common name FrontProxyUser): an aggregated API server trusts the user
	// headers (FrontProxyUserHeader, ...) of a request only when it comes with that certificate.
	RequestHeaderCA []byte

	pki   *clusterPKI
	procs []*proc.Process // in start order
}

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return errors.New("controlplane: DataDir is required")
	}
	// kine and kube-apiserver run in the database directory (see kineSocket), so every path
	// handed to a component must be absolute.
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("controlplane: DataDir: %w", err)
	}
	c.DataDir = dir
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = "10.43.0.0/16"
	}
	if c.PodCIDR == "" {
		c.PodCIDR = "10.42.0.0/16"
	}
	if c.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return err
		}
		c.BinDir = dir
	}
	return checkBinDir(c.BinDir)
}

// Start brings up kine, kube-apiserver, kube-controller-manager, kube-scheduler and kwok and
// returns once the API server is ready and the other components answer their health checks.
// On error everything started so far is stopped again.
func Start(ctx context.Context, cfg Config) (_ *ControlPlane, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, d := range []string{"tls", "cred", "db", "logs"} {
		dirs[d] = filepath.Join(cfg.DataDir, d)
		if err := os.MkdirAll(dirs[d], 0o700); err != nil {
			return nil, fmt.Errorf("controlplane: creating %s: %w", dirs[d], err)
		}
	}
	if err := privateDir(dirs["db"]); err != nil {
		return nil, err
	}
	primary, _, _ := strings.Cut(cfg.ServiceCIDR, ",")
	serviceIP, err := firstServiceIP(primary)
	if err != nil {
		return nil, err
	}
	listen := apiServerListen(cfg)
	pki, err := newPKI(dirs["tls"], serviceIP, servingNames{ips: listen.servingIPs(cfg.ServingIPs), dns: cfg.ServingNames})
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	apiPort := cfg.APIServerPort
	if apiPort == 0 {
		apiPort = ports[0]
	}
	cp := &ControlPlane{URL: "https://" + net.JoinHostPort(listen.client.String(), strconv.Itoa(apiPort)), pki: pki}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()
	kubeconfigs, err := pki.writeKubeconfigs(dirs["cred"], cp.URL)
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	cp.AdminKubeconfig = kubeconfigs["admin"]
	frontProxy, err := newFrontProxy(dirs["tls"])
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	cp.RequestHeaderCA = frontProxy.ca.certPEM
	cp.Config = pki.restConfig(cp.URL, pki.admin)

	bin := func(name string) string { return filepath.Join(cfg.BinDir, name) }
	// The user's arguments come last, so they win over ours.
	extraArgs := map[string][]string{"kube-controller-manager": cfg.ExtraControllerManagerArgs}
	startIn := func(dir, name string, args ...string) (*proc.Process, error) {
		args = append(args, extraArgs[name]...)
		p, err := proc.Start(name, bin(name), args, dirs["logs"], proc.Options{Dir: dir})
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		cp.procs = append(cp.procs, p)
		return p, nil
	}
	start := func(name string, args ...string) (*proc.Process, error) { return startIn("", name, args...) }

	// kine and kube-apiserver name the socket relative to the database directory, their
	// working directory: a unix socket's path is limited to 108 bytes, which a deep data
	// directory (a test's temporary directory) exceeds.
	socket := filepath.Join(dirs["db"], kineSocket)
	// A socket left by a killed kine would pass the readiness check below before kine binds.
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("controlplane: removing kine's old socket: %w", err)
	}
	kine, err := startIn(dirs["db"], "kine",
		"--listen-address", "unix://"+kineSocket,
		"--endpoint", "sqlite://"+filepath.Join(dirs["db"], "state.db")+"?_journal=WAL&cache=shared&_busy_timeout=30000",
		// No metrics port either: nothing of kine listens on TCP.
		"--metrics-bind-address", "0",
	)
	if err != nil {
		return nil, err
	}
	// The socket appears when kine listens; our own dial could not name a path this long.
	if err := waitFor(ctx, kine, "kine", func() error { return isSocket(socket) }); err != nil {
		return nil, err
	}

	tlsDir := dirs["tls"]
	apiserver, err := startIn(dirs["db"], "kube-apiserver", append(listen.args(cfg.ServiceNodePortRange),
		"--etcd-servers=unix://"+kineSocket,
		"--secure-port="+strconv.Itoa(apiPort),
		// The chain ends with the CA, so an agent holding only the CA's hash (the node
		// token's K10 prefix) can check the server before it sends its token.
		"--tls-cert-file="+pki.servingChain,
		"--tls-private-key-file="+filepath.Join(tlsDir, "serving-kube-apiserver.key"),
		"--client-ca-file="+filepath.Join(tlsDir, "ca.crt"),
		// Agents join with a bootstrap token and get their kubelet's certificate through a
		// CSR (Kubernetes' TLS bootstrap); NodeRestriction keeps each kubelet to its own node.
		"--enable-bootstrap-token-auth=true",
		"--enable-admission-plugins=NodeRestriction",
		// logs, exec and port-forward reach kubelets as user kube-apiserver (bound to
		// system:kubelet-api-admin, as K3s's kube-apiserver-kubelet-admin binding does), by
		// address: node names are not in any DNS.
		"--kubelet-client-certificate="+filepath.Join(tlsDir, "client-kube-apiserver.crt"),
		"--kubelet-client-key="+filepath.Join(tlsDir, "client-kube-apiserver.key"),
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--authorization-mode=Node,RBAC",
		"--anonymous-auth=false",
		"--allow-privileged=true",
		"--service-cluster-ip-range="+cfg.ServiceCIDR,
		"--profiling=false",
		// The aggregation layer (see frontProxy). Aggregator routing sends a request for an
		// APIService to its Service's endpoint addresses, not to its ClusterIP, which would
		// need kube-proxy on this host; K3s runs kube-apiserver the same way.
		"--requestheader-client-ca-file="+frontProxy.caFile,
		"--requestheader-allowed-names="+FrontProxyUser,
		"--requestheader-username-headers="+FrontProxyUserHeader,
		"--requestheader-group-headers="+FrontProxyGroupHeader,
		"--requestheader-extra-headers-prefix="+FrontProxyExtraHeaderPrefix,
		"--proxy-client-cert-file="+frontProxy.certFile,
		"--proxy-client-key-file="+frontProxy.keyFile,
		"--enable-aggregator-routing=true",
	)...)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, fmt.Errorf("controlplane: admin client: %w", err)
	}
	if err := waitFor(ctx, apiserver, "kube-apiserver", func() error {
		return client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return nil, err
	}

	cmPort, schedPort, kwokPort := ports[1], ports[2], ports[3]
	cm, err := start("kube-controller-manager",
		"--kubeconfig="+kubeconfigs["controller-manager"],
		"--authentication-kubeconfig="+kubeconfigs["controller-manager"],
		"--authorization-kubeconfig="+kubeconfigs["controller-manager"],
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(cmPort),
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki.saKey,
		"--root-ca-file="+filepath.Join(tlsDir, "ca.crt"),
		"--cluster-signing-cert-file="+filepath.Join(tlsDir, "ca.crt"),
		"--cluster-signing-key-file="+filepath.Join(tlsDir, "ca.key"),
		// Node IPAM stays off: pod CIDRs are clustercidr's job.
		"--allocate-node-cidrs=false",
		"--controllers=*",
		// kwok renews node leases late while thousands of simulated pods load the machine,
		// and unlike a kubelet it never re-reports a pod Ready after the node lifecycle
		// controller marked it not ready: one lapse past the default 50 s grace would leave
		// every pod of the node unready for good.
		"--node-monitor-grace-period=5m",
		// The default 20 QPS makes the DaemonSet controller the pace setter of every
		// ServiceLB benchmark (500 pod creations ≈ 25 s); a real cluster's nodes would not
		// wait on this either.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
		// Every family's range, as K3s passes --service-cidr to both.
		"--service-cluster-ip-range="+cfg.ServiceCIDR,
	)
	if err != nil {
		return nil, err
	}
	sched, err := start("kube-scheduler",
		"--kubeconfig="+kubeconfigs["scheduler"],
		"--authentication-kubeconfig="+kubeconfigs["scheduler"],
		"--authorization-kubeconfig="+kubeconfigs["scheduler"],
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--leader-elect=false",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	var kwok *proc.Process
	if !cfg.DisableKwok {
		if kwok, err = start("kwok",
			"--kubeconfig="+kubeconfigs["kwok"],
			"--config="+bin("kwok-stages.yaml"),
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"="+KwokNodeAnnotationValue,
			"--cidr="+cfg.PodCIDR,
			"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		); err != nil {
			return nil, err
		}
	}
	if err := waitFor(ctx, cm, "kube-controller-manager", func() error { return healthz(cmPort) }); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, sched, "kube-scheduler", func() error { return healthz(schedPort) }); err != nil {
		return nil, err
	}
	if kwok != nil {
		if err := waitFor(ctx, kwok, "kwok", func() error { return dialTCP("127.0.0.1:" + strconv.Itoa(kwokPort)) }); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// Stop stops every component in reverse start order. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		errs = append(errs, cp.procs[i].Stop())
	}
	cp.procs = nil
	return errors.Join(errs...)
}

// LogPaths returns the log files of the running components.
func (cp *ControlPlane) LogPaths() []string {
	var paths []string
	for _, p := range cp.procs {
		paths = append(paths, p.LogPath())
	}
	return paths
}

// waitFor polls check until it succeeds, the process exits, ctx ends or readyTimeout passes.
func waitFor(ctx context.Context, p *proc.Process, what string, check func() error) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("controlplane: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controlplane: %s not ready after %s: %w (log: %s)", what, readyTimeout, last, p.LogPath())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controlplane: waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// privateDir makes dir, which must be a directory of ours and no symlink, accessible to its
// owner only, whatever mode an earlier run or another tool left it with.
func privateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("controlplane: %s must be a directory owned by uid %d", dir, os.Geteuid())
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}

func isSocket(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s is not a socket", path)
	}
	return nil
}

func dialTCP(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// healthz asks a component's loopback secure port, whose certificate is self-signed; the
// address is ours, so skipping verification trusts nothing beyond this machine.
func healthz(port int) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback health probe
	}
	resp, err := client.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// freePorts reserves n distinct loopback ports by listening on them at once, then releases
// them for the components to bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("controlplane: finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
