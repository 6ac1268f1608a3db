package helm

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// config returns the HelmChartConfig of the same namespace and name, or nil.
func (c *Controller) config(key cache.ObjectName) (*helmchart.HelmChartConfig, error) {
	obj, err := c.configs.ByNamespace(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting HelmChartConfig %s: %w", key, err)
	}
	cfg := &helmchart.HelmChartConfig{}
	if err := helmchart.Decode(obj.(*unstructured.Unstructured), cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// layers gathers the values layers of hc and its config, reading values Secrets from the
// HelmChart's namespace, and a copy of them for configHash without the Secrets marked
// ignoreUpdates. Their changes do not redeploy, and leaving them out of the
// hash keeps it so after a restart too; the next change of anything else deploys their
// current contents, as K3s's next job run mounts them.
func (c *Controller) layers(ctx context.Context, hc *helmchart.HelmChart, cfg *helmchart.HelmChartConfig) (all, hashed valuesLayers, err error) {
	all = valuesLayers{chartValuesContent: hc.Spec.ValuesContent, chartValues: hc.Spec.Values, set: hc.Spec.Set}
	var chartWatched, configWatched []string
	if all.chartSecrets, chartWatched, err = c.secretDocs(ctx, hc, hc.Spec.ValuesSecrets); err != nil {
		return all, hashed, err
	}
	if cfg != nil {
		all.configValuesContent, all.configValues = cfg.Spec.ValuesContent, cfg.Spec.Values
		if all.configSecrets, configWatched, err = c.secretDocs(ctx, hc, cfg.Spec.ValuesSecrets); err != nil {
			return all, hashed, err
		}
	}
	hashed = all
	hashed.chartSecrets, hashed.configSecrets = chartWatched, configWatched
	return all, hashed, nil
}

// secretDocs reads the values documents of refs, Secrets and keys in list order, and
// returns them all and those of Secrets without ignoreUpdates. A Secret named
// chart-values-<chart> or listing no keys is ignored; a missing Secret whose
// reference has ignoreUpdates is skipped, as K3s mounts it optional. The Secret informer
// re-syncs the chart when a Secret it needs appears or changes.
func (c *Controller) secretDocs(ctx context.Context, hc *helmchart.HelmChart, refs []helmchart.ValuesSecret) (all, watched []string, err error) {
	for _, ref := range refs {
		if !helmchart.UsedValuesSecret(hc.Name, ref) {
			continue
		}
		s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ref.IgnoreUpdates {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading values Secret %s/%s: %w", hc.Namespace, ref.Name, err)
		}
		for _, k := range ref.Keys {
			v, ok := s.Data[k]
			if !ok {
				continue
			}
			all = append(all, string(v))
			if !ref.IgnoreUpdates {
				watched = append(watched, string(v))
			}
		}
	}
	return all, watched, nil
}
