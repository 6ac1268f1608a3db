package helmjob

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// statusFor is K3s's status for a chart whose job is job: its name, JobCreated, and Failed
// once the job failed.
func statusFor(job *batchv1.Job) helmchart.HelmChartStatus {
	failed := helmchart.HelmChartCondition{Type: helmchart.ConditionFailed, Status: corev1.ConditionFalse}
	if jobCondition(job, batchv1.JobFailed) {
		failed = helmchart.HelmChartCondition{Type: helmchart.ConditionFailed, Status: corev1.ConditionTrue, Reason: "JobFailed", Message: "Job failed"}
	}
	return helmchart.HelmChartStatus{
		JobName: job.Name,
		Conditions: []helmchart.HelmChartCondition{
			{Type: helmchart.ConditionJobCreated, Status: corev1.ConditionTrue, Reason: "JobCreated", Message: "Job created"},
			failed,
		},
	}
}

// jobCondition reports whether job has condition typ True.
func jobCondition(job *batchv1.Job, typ batchv1.JobConditionType) bool {
	if job == nil {
		return false
	}
	for _, c := range job.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// fail reports a chart that cannot run: condition Failed with reason and message, and a
// Warning Event when that is news. Only a change to the chart fixes it.
func (c *Controller) fail(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart, reason, message string) error {
	klog.FromContext(ctx).Info("HelmChart failed", "reason", reason, "message", message)
	want := hc.Status
	want.Conditions = []helmchart.HelmChartCondition{{Type: helmchart.ConditionFailed, Status: corev1.ConditionTrue, Reason: reason, Message: message}}
	changed, err := c.writeStatus(ctx, u, hc, want)
	if changed {
		c.recorder.Event(u, corev1.EventTypeWarning, reason, message)
	}
	return err
}

// writeStatus writes want through the status subresource when it differs from hc's, keeping
// conditions of other types, and reports whether it wrote.
func (c *Controller) writeStatus(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart, want helmchart.HelmChartStatus) (bool, error) {
	want.Conditions = mergeConditions(hc.Status.Conditions, want.Conditions...)
	if equalStatus(hc.Status, want) {
		return false, nil
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&want)
	if err != nil {
		return false, fmt.Errorf("encoding HelmChart %s/%s status: %w", hc.Namespace, hc.Name, err)
	}
	cp := u.DeepCopy()
	cp.Object["status"] = status
	if _, err := c.dyn.Resource(helmchart.Resource).Namespace(hc.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return false, fmt.Errorf("updating HelmChart %s/%s status: %w", hc.Namespace, hc.Name, err)
	}
	return true, nil
}

// mergeConditions replaces the conditions of have whose types set holds, in place, and
// appends the others.
func mergeConditions(have []helmchart.HelmChartCondition, set ...helmchart.HelmChartCondition) []helmchart.HelmChartCondition {
	out := make([]helmchart.HelmChartCondition, 0, len(have)+len(set))
	done := map[string]bool{}
	for _, h := range have {
		for _, s := range set {
			if s.Type == h.Type {
				h = s
				done[s.Type] = true
			}
		}
		out = append(out, h)
	}
	for _, s := range set {
		if !done[s.Type] {
			out = append(out, s)
			done[s.Type] = true
		}
	}
	return out
}

func equalStatus(a, b helmchart.HelmChartStatus) bool {
	if a.JobName != b.JobName || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i] != b.Conditions[i] {
			return false
		}
	}
	return true
}
