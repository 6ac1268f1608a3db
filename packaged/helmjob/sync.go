package helmjob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// errValuesSecretMissing marks a values Secret a chart needs and that does not exist: the
// chart waits for it (the Secret informer re-syncs it when it appears).
var errValuesSecretMissing = errors.New("values Secret not found")

// sync reconciles the HelmChart key: claim it, guard it with the finalizer, apply its
// objects and its job, and report the job in its status; or, once it is deleted, uninstall.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("helmChart", key.String())
	ctx = klog.NewContext(ctx, logger)
	obj, err := c.charts.ByNamespace(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil // its namespaced objects go with it (owner references)
	}
	if err != nil {
		return fmt.Errorf("getting HelmChart %s: %w", key, err)
	}
	u := obj.(*unstructured.Unstructured)
	hc := &helmchart.HelmChart{}
	if err := helmchart.Decode(u, hc); err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonInvalidChart, err.Error())
		return nil // only a change fixes it, and a change requeues it
	}
	switch helmchart.ClaimFor(hc, c.opts.ManagedBy) {
	case helmchart.ClaimIgnore:
		return nil
	case helmchart.ClaimTake:
		return helmchart.PatchMetadata(ctx, c.dyn, hc, map[string]string{helmchart.AnnotationManagedBy: c.opts.ManagedBy}, hc.Finalizers)
	}
	if hc.DeletionTimestamp != nil {
		return c.remove(ctx, u, hc)
	}
	if !hc.HasFinalizer() {
		return helmchart.PatchMetadata(ctx, c.dyn, hc, nil, append(slices.Clone(hc.Finalizers), helmchart.Finalizer))
	}
	if v := hc.Spec.HelmVersion; v != "" && v != "v3" {
		return c.fail(ctx, u, hc, ReasonUnsupportedVersion, fmt.Sprintf("Unsupported version %q", v))
	}
	in, objs, err := c.build(ctx, hc, false)
	if err != nil {
		return c.buildFailed(ctx, u, hc, err)
	}
	if err := c.applyObjects(ctx, u, objs); err != nil {
		return err
	}
	job, err := c.ensureJob(ctx, u, in, objs, ReasonApplyJob)
	if err != nil {
		return err
	}
	wasFailed := slices.ContainsFunc(hc.Status.Conditions, func(c helmchart.HelmChartCondition) bool {
		return c.Type == helmchart.ConditionFailed && c.Status == corev1.ConditionTrue
	})
	changed, err := c.writeStatus(ctx, u, hc, statusFor(job))
	if changed && !wasFailed && jobCondition(job, batchv1.JobFailed) { // said once per failure
		c.recorder.Eventf(u, corev1.EventTypeWarning, ReasonJobFailed, "Job %s/%s failed", job.Namespace, job.Name)
	}
	return err
}

// remove runs a deleted chart's helm-delete job and, once it completed, deletes the chart's
// objects and releases the finalizer.
func (c *Controller) remove(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart) error {
	if !hc.HasFinalizer() {
		return nil
	}
	// The cache can be behind a removal this controller just finished (the jobs' deletion
	// requeues the chart): ask the API server, so nothing is made again for a chart that
	// is gone.
	live, err := c.dyn.Resource(helmchart.Resource).Namespace(hc.Namespace).Get(ctx, hc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting HelmChart %s/%s: %w", hc.Namespace, hc.Name, err)
	}
	if !slices.Contains(live.GetFinalizers(), helmchart.Finalizer) {
		return nil
	}
	in, objs, err := c.build(ctx, hc, true)
	if err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonInvalidChart, err.Error())
		return err
	}
	// The install job must not run beside the uninstall.
	if err := c.deleteJob(ctx, hc.Namespace, InstallJobName(hc.Name)); err != nil {
		return err
	}
	var job *batchv1.Job
	err = c.applyObjects(ctx, u, objs)
	if err == nil {
		job, err = c.ensureJob(ctx, u, in, objs, ReasonRemoveJob)
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// The namespace is going: no job can run in it, and its deletion must not wait for
		// one (as K3s). The chart's objects go with the namespace.
		klog.FromContext(ctx).Info("Namespace terminating; releasing the HelmChart without an uninstall job")
		return c.releaseFinalizer(ctx, hc)
	}
	if err != nil {
		return err
	}
	switch {
	case jobCondition(job, batchv1.JobFailed):
		c.recorder.Eventf(u, corev1.EventTypeWarning, ReasonJobFailed, "Job %s/%s failed", job.Namespace, job.Name)
		return nil // K3s waits for an operator; a change to the job requeues the chart
	case !jobCondition(job, batchv1.JobComplete):
		return nil // the job's completion requeues the chart
	}
	if err := c.deleteObjects(ctx, hc); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Uninstalled the HelmChart's release", "job", job.Name)
	return c.releaseFinalizer(ctx, hc)
}

// build builds hc's objects from what inputs reads.
func (c *Controller) build(ctx context.Context, hc *helmchart.HelmChart, deleting bool) (Inputs, *Objects, error) {
	in, err := c.inputs(ctx, hc, deleting)
	if err != nil {
		return in, nil, err
	}
	objs, err := Build(in, c.opts.Job)
	return in, objs, err
}

func (c *Controller) releaseFinalizer(ctx context.Context, hc *helmchart.HelmChart) error {
	rest := slices.DeleteFunc(slices.Clone(hc.Finalizers), func(f string) bool { return f == helmchart.Finalizer })
	return helmchart.PatchMetadata(ctx, c.dyn, hc, nil, rest)
}

// inputs reads what a chart's objects are built from: its config and the values Secrets in
// its hash; the uninstall job needs only the config. The release's revision is read only
// when a job is created (ensureJob): it is not part of the hash.
func (c *Controller) inputs(ctx context.Context, hc *helmchart.HelmChart, deleting bool) (Inputs, error) {
	in := Inputs{Chart: hc, Deleting: deleting, ValuesSecrets: map[string]map[string][]byte{}}
	if obj, err := c.configs.ByNamespace(hc.Namespace).Get(hc.Name); err == nil {
		in.Config = &helmchart.HelmChartConfig{}
		if err := helmchart.Decode(obj.(*unstructured.Unstructured), in.Config); err != nil {
			return in, err
		}
	} else if !apierrors.IsNotFound(err) {
		return in, err
	}
	if deleting {
		// The uninstall reads no values: a values Secret deleted before its chart must keep
		// neither the controller nor the job's pod (which would mount it) from going on.
		chart := *hc
		chart.Spec.ValuesSecrets = nil
		in.Chart = &chart
		if in.Config != nil {
			cfg := *in.Config
			cfg.Spec.ValuesSecrets = nil
			in.Config = &cfg
		}
		return in, nil
	}
	if c.opts.StaticDir != "" {
		chart, err := withStaticContent(hc, c.opts.StaticDir)
		if err != nil {
			return in, err
		}
		in.Chart = chart
	}
	for _, name := range hashedSecrets(in) {
		s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return in, fmt.Errorf("%w: %s/%s", errValuesSecretMissing, hc.Namespace, name)
		}
		if err != nil {
			return in, fmt.Errorf("reading values Secret %s/%s: %w", hc.Namespace, name, err)
		}
		in.ValuesSecrets[name] = s.Data
	}
	return in, nil
}

// buildFailed reports a chart whose objects cannot be built; a read that failed is retried,
// and so is a static chart not yet in its directory (it is reported while it is missing).
func (c *Controller) buildFailed(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart, err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	if failErr := c.fail(ctx, u, hc, ReasonInvalidChart, err.Error()); failErr != nil {
		return failErr
	}
	if errors.Is(err, fs.ErrNotExist) {
		return err // retried with backoff until the file appears
	}
	return nil // only a change to the chart fixes it, and a change requeues it
}

// releaseRevision is the revision of the chart's newest release record, 0 when there is none,
// read from the records' labels (owner=helm, name, version) without decoding a release.
func (c *Controller) releaseRevision(ctx context.Context, hc *helmchart.HelmChart) (int, error) {
	resource := corev1.SchemeGroupVersion.WithResource("secrets")
	if hc.Spec.Driver == "configmap" {
		resource = corev1.SchemeGroupVersion.WithResource("configmaps")
	}
	list, err := c.meta.Resource(resource).Namespace(hc.TargetNamespace()).List(ctx,
		metav1.ListOptions{LabelSelector: "owner=helm,name=" + hc.Name})
	if err != nil {
		return 0, fmt.Errorf("listing the release records of %s/%s: %w", hc.TargetNamespace(), hc.Name, err)
	}
	newest := 0
	for _, rec := range list.Items {
		if v, err := strconv.Atoi(rec.Labels["version"]); err == nil && v > newest {
			newest = v
		}
	}
	return newest, nil
}

// applyObjects server-side applies the chart's service account, ClusterRoleBinding, values
// Secret and content ConfigMap. Each is read first and applied only when it lacks what it
// should hold (upToDate): a restart, or a Job event, with nothing changed writes nothing, and
// an object someone deleted or changed is put back at the chart's next sync, as K3s's apply
// does. The namespaced ones are owned by the HelmChart, so they go with it; the
// ClusterRoleBinding is deleted by name, as a cluster-wide object cannot be owned by a
// namespaced one.
func (c *Controller) applyObjects(ctx context.Context, u *unstructured.Unstructured, objs *Objects) error {
	owner := ownerReference(u)
	type object struct {
		gvr schema.GroupVersionResource
		gvk schema.GroupVersionKind
		obj metav1.Object
		get func() (any, error) // the live object
	}
	core, rbac := c.client.CoreV1(), c.client.RbacV1()
	sa, crb, secret, cm := objs.ServiceAccount, objs.ClusterRoleBinding, objs.ValuesSecret, objs.ContentConfigMap
	list := []object{
		{corev1.SchemeGroupVersion.WithResource("serviceaccounts"), corev1.SchemeGroupVersion.WithKind("ServiceAccount"), sa,
			func() (any, error) { return core.ServiceAccounts(sa.Namespace).Get(ctx, sa.Name, metav1.GetOptions{}) }},
		{rbacv1.SchemeGroupVersion.WithResource("clusterrolebindings"), rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), crb,
			func() (any, error) { return rbac.ClusterRoleBindings().Get(ctx, crb.Name, metav1.GetOptions{}) }},
		{corev1.SchemeGroupVersion.WithResource("secrets"), corev1.SchemeGroupVersion.WithKind("Secret"), secret,
			func() (any, error) { return core.Secrets(secret.Namespace).Get(ctx, secret.Name, metav1.GetOptions{}) }},
	}
	if cm != nil {
		list = append(list, object{corev1.SchemeGroupVersion.WithResource("configmaps"), corev1.SchemeGroupVersion.WithKind("ConfigMap"), cm,
			func() (any, error) { return core.ConfigMaps(cm.Namespace).Get(ctx, cm.Name, metav1.GetOptions{}) }})
	}
	for _, o := range list {
		if o.obj.GetNamespace() != "" {
			o.obj.SetOwnerReferences([]metav1.OwnerReference{owner})
		}
		live, err := o.get()
		switch {
		case err == nil && upToDate(live, o.obj):
			continue
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("reading %s %s: %w", o.gvk.Kind, o.obj.GetName(), err)
		}
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o.obj)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", o.gvk.Kind, o.obj.GetName(), err)
		}
		apply := &unstructured.Unstructured{Object: content}
		apply.SetGroupVersionKind(o.gvk)
		unstructured.RemoveNestedField(apply.Object, "metadata", "creationTimestamp")
		res := c.dyn.Resource(o.gvr).Namespace(o.obj.GetNamespace())
		if _, err := res.Apply(ctx, o.obj.GetName(), apply, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.gvk.Kind, o.obj.GetName(), err)
		}
	}
	return nil
}

// ensureJob creates the chart's job when there is none, with the release's revision as the
// job expects it, and replaces one built from another config hash. The old job is deleted in the foreground, so the new one, of the same name,
// is created only once the old one's pods are gone and two Helm operations never overlap.
func (c *Controller) ensureJob(ctx context.Context, u *unstructured.Unstructured, in Inputs, objs *Objects, reason string) (*batchv1.Job, error) {
	want := objs.Job
	job, err := c.jobs.Jobs(want.Namespace).Get(want.Name)
	switch {
	case apierrors.IsNotFound(err):
		if !in.Deleting { // an uninstall goes ahead whatever the revision
			if in.ExpectedRevision, err = c.releaseRevision(ctx, in.Chart); err != nil {
				return nil, err
			}
			rebuilt, err := Build(in, c.opts.Job)
			if err != nil {
				return nil, err
			}
			want = rebuilt.Job
		}
		want.OwnerReferences = []metav1.OwnerReference{ownerReference(u)}
		created, err := c.client.BatchV1().Jobs(want.Namespace).Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
		if apierrors.IsAlreadyExists(err) {
			// The cache has not seen the job yet. Its arrival syncs the chart again, and that
			// sync compares its hash; until then the status reports the live job.
			live, err := c.client.BatchV1().Jobs(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("reading Job %s/%s: %w", want.Namespace, want.Name, err)
			}
			return live, nil
		}
		if err != nil {
			return nil, fmt.Errorf("creating Job %s/%s: %w", want.Namespace, want.Name, err)
		}
		c.recorder.AnnotatedEventf(u, map[string]string{helmchart.LabelConfigHash: objs.ConfigHash}, corev1.EventTypeNormal, reason,
			"Applying HelmChart using Job %s/%s", want.Namespace, want.Name)
		return created, nil
	case err != nil:
		return nil, err
	case job.Annotations[helmchart.LabelConfigHash] == objs.ConfigHash || job.DeletionTimestamp != nil:
		return job, nil
	}
	klog.FromContext(ctx).Info("Replacing the HelmChart's job: its configuration changed", "job", job.Name)
	return job, c.deleteJob(ctx, job.Namespace, job.Name)
}

// deleteJob deletes a job and, first, its pods; a job already gone is no error.
func (c *Controller) deleteJob(ctx context.Context, ns, name string) error {
	err := c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Job %s/%s: %w", ns, name, err)
	}
	return nil
}

// deleteObjects deletes what the controller made for hc, once its release is uninstalled.
func (c *Controller) deleteObjects(ctx context.Context, hc *helmchart.HelmChart) error {
	ns, name := hc.Namespace, hc.Name
	core := c.client.CoreV1()
	for _, del := range []func() error{
		func() error { return c.deleteJob(ctx, ns, DeleteJobName(name)) },
		func() error { return c.deleteJob(ctx, ns, InstallJobName(name)) },
		func() error {
			return core.ServiceAccounts(ns).Delete(ctx, ServiceAccountName(name), metav1.DeleteOptions{})
		},
		func() error { return core.Secrets(ns).Delete(ctx, ValuesSecretName(name), metav1.DeleteOptions{}) },
		func() error {
			return core.ConfigMaps(ns).Delete(ctx, ContentConfigMapName(name), metav1.DeleteOptions{})
		},
		func() error {
			return c.client.RbacV1().ClusterRoleBindings().Delete(ctx, ClusterRoleBindingName(ns, name), metav1.DeleteOptions{})
		},
	} {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func ownerReference(u *unstructured.Unstructured) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), UID: types.UID(u.GetUID())}
}
