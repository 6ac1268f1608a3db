package helm

import (
	"context"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// fetchAuth reads what reaching src takes from hc's spec and the Secret and ConfigMap it
// names in its own namespace: repoCA and repoCAConfigMap, authSecret
// (username/password or tls.crt/tls.key), and for OCI dockerRegistrySecret when
// authSecret gives no password.
func (c *Controller) fetchAuth(ctx context.Context, hc *helmchart.HelmChart, src chartSource) (fetchAuth, error) {
	a := fetchAuth{
		caPEM:                 []byte(hc.Spec.RepoCA),
		passCredentials:       hc.Spec.AuthPassCredentials,
		insecureSkipTLSVerify: hc.Spec.InsecureSkipTLSVerify,
		plainHTTP:             hc.Spec.PlainHTTP,
	}
	if name := helmchart.RefName(hc.Spec.RepoCAConfigMap); name != "" {
		cm, err := c.client.CoreV1().ConfigMaps(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return a, fmt.Errorf("reading repoCAConfigMap %s/%s: %w", hc.Namespace, name, err)
		}
		a.caPEM = appendCABundle(a.caPEM, cm.Data)
	}
	if name := helmchart.RefName(hc.Spec.AuthSecret); name != "" {
		s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return a, fmt.Errorf("reading authSecret %s/%s: %w", hc.Namespace, name, err)
		}
		a.setAuthSecret(s.Data)
	}
	if src.kind == sourceOCI && a.password == "" {
		var err error
		if a.username, a.password, err = c.registryAuth(ctx, hc, src); err != nil {
			return a, err
		}
	}
	return a, nil
}

// registryAuth returns the credentials dockerRegistrySecret holds for src's registry, or
// none.
func (c *Controller) registryAuth(ctx context.Context, hc *helmchart.HelmChart, src chartSource) (user, pass string, err error) {
	name := helmchart.RefName(hc.Spec.DockerRegistrySecret)
	if name == "" {
		return "", "", nil
	}
	s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("reading dockerRegistrySecret %s/%s: %w", hc.Namespace, name, err)
	}
	user, pass, err = registryCredentialsFor(s.Data[corev1.DockerConfigJsonKey], src)
	if err != nil {
		return "", "", fmt.Errorf("dockerRegistrySecret %s/%s: %w", hc.Namespace, name, err)
	}
	return user, pass, nil
}

// setAuthSecret takes authSecret's keys, read from the Secret or from the job's files:
// username and password, or tls.crt and tls.key.
func (a *fetchAuth) setAuthSecret(data map[string][]byte) {
	a.username, a.password = string(data[corev1.BasicAuthUsernameKey]), string(data[corev1.BasicAuthPasswordKey])
	a.certPEM, a.keyPEM = data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey]
}

// registryCredentialsFor returns the credentials a .dockerconfigjson document holds for the
// registry of src, an OCI reference, or none.
func registryCredentialsFor(dockerConfig []byte, src chartSource) (user, pass string, err error) {
	host := ""
	if u, err := url.Parse(src.ref); err == nil {
		host = u.Host
	}
	user, pass, _, err = registryCredentials(dockerConfig, host)
	return user, pass, err
}
