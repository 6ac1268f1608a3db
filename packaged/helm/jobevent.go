package helm

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// recordJobEvent records a Warning Event on the HelmChart namespace/name from the job's pod,
// as the in-process controller's recorder would: the job is where a chart's values are read,
// so it is the job that says what it ignores (UnsupportedValues).
func recordJobEvent(ctx context.Context, cfg *rest.Config, namespace, name, reason, message string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	hc, err := dyn.Resource(helmchart.Resource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting HelmChart %s/%s: %w", namespace, name, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	now := metav1.Now()
	_, err = client.CoreV1().Events(namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + ".", Namespace: namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: hc.GetAPIVersion(), Kind: hc.GetKind(), Namespace: namespace,
			Name: name, UID: hc.GetUID(), ResourceVersion: hc.GetResourceVersion()},
		Reason: reason, Message: message, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: helmEventComponent},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
}
