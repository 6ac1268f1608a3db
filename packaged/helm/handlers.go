package helm

import (
	"fmt"

	"github.com/k3snet/k3snet/internal/workloop"
	"github.com/k3snet/k3snet/packaged/helmchart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// watchSecrets registers the Secret handler on an informer of Secrets' metadata only, in
// the controller's namespace, without Helm's release records. Values and auth Secrets
// are read with a GET when a chart syncs, so their data never sits in a cache, and the
// release records, which hold whole rendered manifests and change with every upgrade,
// are not even watched: no HelmChart can usefully name one.
func (c *Controller) watchSecrets() (metadatainformer.SharedInformerFactory, error) {
	f := metadatainformer.NewFilteredSharedInformerFactory(c.meta, 0, c.opts.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermNotEqualSelector("type", helmReleaseSecretType).String()
	})
	inf := f.ForResource(corev1.SchemeGroupVersion.WithResource("secrets")).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleSecret,
		UpdateFunc: c.handleSecretUpdate,
		DeleteFunc: c.handleSecret,
	}); err != nil {
		return nil, fmt.Errorf("packaged: watching Secrets: %w", err)
	}
	c.secretsSynced = inf.HasSynced
	return f, nil
}

// enqueue queues the key of a HelmChart or HelmChartConfig.
func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// handleUpdate drops resyncs, which change nothing.
func (c *Controller) handleUpdate(oldObj, newObj any) {
	if !workloop.IsResync(oldObj, newObj) {
		c.enqueue(newObj)
	}
}

// handleSecret queues the HelmCharts that read the Secret (index helmchart.SecretRefIndex): the
// charts naming it and the charts whose HelmChartConfig names it.
func (c *Controller) handleSecret(obj any) {
	readers, err := helmchart.SecretReaders(obj, c.chartIndex, c.configIndex)
	if err != nil {
		utilruntime.HandleError(err)
	}
	for _, o := range readers {
		c.enqueue(o)
	}
}

// handleSecretUpdate drops resyncs, which change nothing.
func (c *Controller) handleSecretUpdate(oldObj, newObj any) {
	if !workloop.IsResync(oldObj, newObj) {
		c.handleSecret(newObj)
	}
}
