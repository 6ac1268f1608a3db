package helmchart

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// SecretRefIndex indexes HelmCharts and HelmChartConfigs by the Secrets they read
// (ChartSecretRefs, ConfigSecretRefs), so a change to a Secret re-syncs its charts.
const SecretRefIndex = "secretRef"

// ChartSecretRefs is the SecretRefIndex function of HelmCharts: the "<namespace>/<name>"
// of each Secret whose change re-syncs the chart (SecretRefKeys). An index function must
// not fail (the indexer panics), and a chart that cannot be decoded reads no Secret.
func ChartSecretRefs(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	hc := &HelmChart{}
	if err := Decode(u, hc); err != nil {
		return nil, nil
	}
	return SecretRefKeys(hc.Namespace, hc.Name, hc.Spec.ValuesSecrets,
		RefName(hc.Spec.AuthSecret), RefName(hc.Spec.DockerRegistrySecret)), nil
}

// ConfigSecretRefs is the SecretRefIndex function of HelmChartConfigs: the values Secrets
// of a config re-sync the chart of the same name.
func ConfigSecretRefs(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	cfg := &HelmChartConfig{}
	if err := Decode(u, cfg); err != nil {
		return nil, nil
	}
	return SecretRefKeys(u.GetNamespace(), u.GetName(), cfg.Spec.ValuesSecrets), nil
}

// SecretRefKeys are the index keys ("<namespace>/<name>") of the Secrets whose change must
// re-sync a HelmChart or HelmChartConfig named name in ns: its values Secrets, except
// those with ignoreUpdates (helm-controller: their changes do not redeploy) and those the
// controller ignores anyway (chart-values-<chart> or no keys, as K3s's values layering), plus the
// extra Secrets it reads (authSecret, dockerRegistrySecret), so fixed credentials are
// retried at once. Keys are sorted and unique.
func SecretRefKeys(ns, name string, refs []ValuesSecret, extra ...string) []string {
	var keys []string
	for _, ref := range refs {
		if ref.IgnoreUpdates || !UsedValuesSecret(name, ref) {
			continue
		}
		keys = append(keys, ns+"/"+ref.Name)
	}
	for _, e := range extra {
		if e != "" {
			keys = append(keys, ns+"/"+e)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// RefName is the name a LocalObjectReference field holds, "" when unset.
func RefName(ref *corev1.LocalObjectReference) string {
	if ref == nil {
		return ""
	}
	return ref.Name
}

// SecretReaders returns the HelmCharts and HelmChartConfigs of the indexers (each indexed by
// SecretRefIndex) that read the Secret obj, a Secret or its metadata or a deletion tombstone
// of one. A HelmChartConfig stands for the chart of its name.
func SecretReaders(obj any, indexers ...cache.Indexer) ([]any, error) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return nil, err
	}
	var readers []any
	for _, idx := range indexers {
		objs, err := idx.ByIndex(SecretRefIndex, key)
		if err != nil {
			return readers, err
		}
		readers = append(readers, objs...)
	}
	return readers, nil
}
