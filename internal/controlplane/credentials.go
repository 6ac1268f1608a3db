package controlplane

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clusterPKI is the CA, the serving certificate and one client certificate per user of the
// control plane. Users are distinguished by certificate, as in K3s: the controller manager and
// scheduler get their own identities, so RBAC applies to them as in a real cluster.
type clusterPKI struct {
	ca           *keyPair
	admin        *keyPair
	users        map[string]*keyPair // kubeconfig name → client certificate
	saKey, saPub string
}

func newPKI(dir string, serviceIP netip.Addr) (*clusterPKI, error) {
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	_, err = loadOrIssue(dir, ca, certRequest{
		file:       "serving-kube-apiserver",
		commonName: "kube-apiserver",
		dnsNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP.AsSlice()},
		server:     true,
	})
	if err != nil {
		return nil, err
	}
	p := &clusterPKI{ca: ca, users: map[string]*keyPair{}}
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
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: p.ca.certPEM}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
		cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name}
		cfg.CurrentContext = "default"
		path := filepath.Join(dir, name+".kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			return nil, fmt.Errorf("writing kubeconfig %s: %w", path, err)
		}
		paths[name] = path
	}
	return paths, nil
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
