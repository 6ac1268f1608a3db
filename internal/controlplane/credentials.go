package controlplane

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clusterPKI is the CA, the serving certificate and one client certificate per user of the
// control plane. Users are distinguished by certificate, as in K3s: the controller manager and
// scheduler get their own identities, so RBAC applies to them as in a real cluster.
type clusterPKI struct {
	dir          string
	ca           *keyPair
	admin        *keyPair
	users        map[string]*keyPair // kubeconfig name → client certificate
	saKey, saPub string
	// servingChain is the serving certificate followed by the CA, the file kube-apiserver serves.
	servingChain string
}

// servingNames are the addresses and names, beyond loopback and the kubernetes Service's,
// that kube-apiserver's serving certificate is valid for.
type servingNames struct {
	ips []netip.Addr
	dns []string
}

func newPKI(dir string, serviceIP netip.Addr, extra servingNames) (*clusterPKI, error) {
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP.AsSlice()}
	for _, ip := range extra.ips {
		if !ip.IsLoopback() {
			ips = append(ips, ip.AsSlice())
		}
	}
	serving, err := loadOrIssue(dir, ca, certRequest{
		file:       "serving-kube-apiserver",
		commonName: "kube-apiserver",
		dnsNames: append([]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"}, extra.dns...),
		ips:    ips,
		server: true,
		exact:  true,
	})
	if err != nil {
		return nil, err
	}
	p := &clusterPKI{dir: dir, ca: ca, users: map[string]*keyPair{}, servingChain: filepath.Join(dir, "serving-kube-apiserver-chain.crt")}
	if err := os.WriteFile(p.servingChain, append(append([]byte{}, serving.certPEM...), ca.certPEM...), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p.servingChain, err)
	}
	// kube-apiserver's identity towards kubelets (logs, exec), K3s's user name for it.
	if _, err := loadOrIssue(dir, ca, certRequest{file: "client-kube-apiserver", commonName: "kube-apiserver"}); err != nil {
		return nil, err
	}
	for name, req := range map[string]certRequest{
		"admin":              {file: "client-admin", commonName: "system:admin", organization: []string{"system:masters"}},
		"controller-manager": {file: "client-controller", commonName: "system:kube-controller-manager"},
		"scheduler":          {file: "client-scheduler", commonName: "system:kube-scheduler"},
		// kwok writes node and pod status, node leases and pod deletions for many nodes at
		// once; the node authorizer would limit it to one node.
		"kwok": {file: "client-kwok", commonName: "kwok", organization: []string{"system:masters"}},
	} {
		kp, err := loadOrIssue(dir, ca, req)
		if err != nil {
			return nil, err
		}
		p.users[name] = kp
	}
	p.admin = p.users["admin"]
	if p.saKey, p.saPub, err = loadOrCreateSigningKey(dir); err != nil {
		return nil, err
	}
	return p, nil
}

// writeKubeconfigs writes <dir>/<user>.kubeconfig for every user and returns their paths.
// The admin one is admin.kubeconfig, where K3s users look for it.
func (p *clusterPKI) writeKubeconfigs(dir, url string) (map[string]string, error) {
	paths := map[string]string{}
	for name, kp := range p.users {
		path := filepath.Join(dir, name+".kubeconfig")
		if err := p.writeKubeconfig(path, url, name, kp); err != nil {
			return nil, err
		}
		paths[name] = path
	}
	return paths, nil
}

// writeKubeconfig writes a kubeconfig for the client certificate kp, readable by its owner only.
func (p *clusterPKI) writeKubeconfig(path, url, user string, kp *keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: p.ca.certPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	cfg.CurrentContext = "default"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

func (p *clusterPKI) restConfig(url string, kp *keyPair) *rest.Config {
	return &rest.Config{
		Host: url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   p.ca.certPEM,
			CertData: kp.certPEM,
			KeyData:  kp.keyPEM,
		},
		// Tests create objects in bursts; the client default (5 qps) would make them wait.
		QPS:   200,
		Burst: 400,
		// The API server is on this machine: gzip would only cost CPU on both ends, and a
		// gzip reader per watch (about 40 KB each). kube-controller-manager, kube-scheduler
		// and the cloud-provider library disable it for the same reason (kubernetes#80919).
		DisableCompression: true,
	}
}

// firstServiceIP is the address of the kubernetes Service, which the serving certificate names.
func firstServiceIP(cidr string) (netip.Addr, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("controlplane: service CIDR %q: %w", cidr, err)
	}
	return prefix.Masked().Addr().Next(), nil
}

// AdminKubeconfigFor is a kubeconfig of the admin user that reaches the API server at url,
// for K3s's --write-kubeconfig.
func (cp *ControlPlane) AdminKubeconfigFor(url string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: cp.pki.ca.certPEM}
	cfg.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: cp.pki.admin.certPEM, ClientKeyData: cp.pki.admin.keyPEM}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	return clientcmd.Write(*cfg)
}

// CACertPEM is the cluster CA's certificate, PEM-encoded: what clients and kubelets trust.
func (cp *ControlPlane) CACertPEM() []byte { return cp.pki.ca.certPEM }

// WriteClientKubeconfig issues (or, after a restart, reuses) a client certificate for user
// commonName in groups organization, signed by the cluster CA, and writes a kubeconfig for it
// at path that reaches the API server at url. The server's own agent gets its kubelet,
// kube-proxy and controller identities this way, as K3s's server issues them to its agent.
func (cp *ControlPlane) WriteClientKubeconfig(path, url, commonName string, organization ...string) error {
	file := "client-" + strings.NewReplacer(":", "-", "/", "-").Replace(commonName)
	kp, err := loadOrIssue(cp.pki.dir, cp.pki.ca, certRequest{file: file, commonName: commonName, organization: organization})
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return cp.pki.writeKubeconfig(path, url, commonName, kp)
}
