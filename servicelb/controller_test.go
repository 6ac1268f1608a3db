package servicelb

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "the zero value is K3s's defaults", opts: Options{}},
		{name: "RKE2's program and a class are fine", opts: Options{Program: "rke2", LoadBalancerClass: "example.com/lb", IPMode: corev1.LoadBalancerIPModeProxy}},
		{name: "a namespace must be a DNS label", opts: Options{Namespace: "Kube_System"}, wantErr: "namespace"},
		{name: "a program must build valid keys", opts: Options{Program: "no/slash"}, wantErr: "program"},
		{name: "ipMode is VIP or Proxy", opts: Options{IPMode: "Direct"}, wantErr: "ipMode"},
		{name: "workers cannot be negative", opts: Options{Workers: -1}, wantErr: "workers"},
		{name: "reserved host ports are real ports", opts: Options{ReservedHostPorts: []int32{6443, 10250}}},
		{name: "a reserved host port of 0 is refused", opts: Options{ReservedHostPorts: []int32{10250, 0}}, wantErr: "reserved host port 0"},
		{name: "a reserved host port above 65535 is refused", opts: Options{ReservedHostPorts: []int32{65536}}, wantErr: "reserved host port 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	assert.Equal(t, Options{
		Namespace: "kube-system", Program: "k3s", Image: DefaultImage,
		DefaultPriorityClassName: "system-node-critical", IPMode: corev1.LoadBalancerIPModeVIP, Workers: 1,
	}, o)
}

// liveDaemonSet is want after a trip through the API server: the JSON form, plus the defaults
// the server fills in and that the controller must not mistake for drift.
func liveDaemonSet(t *testing.T, want *appsv1.DaemonSet) *appsv1.DaemonSet {
	t.Helper()
	data, err := json.Marshal(want)
	require.NoError(t, err)
	live := &appsv1.DaemonSet{}
	require.NoError(t, json.Unmarshal(data, live))
	live.Generation = 3
	live.Labels["extra"] = "someone else's"
	live.Spec.RevisionHistoryLimit = new(int32(10))
	live.Spec.UpdateStrategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
	spec := &live.Spec.Template.Spec
	spec.DNSPolicy = corev1.DNSClusterFirst
	spec.RestartPolicy = corev1.RestartPolicyAlways
	spec.SchedulerName = corev1.DefaultSchedulerName
	spec.SecurityContext.RunAsNonRoot = nil
	for i := range spec.Containers {
		spec.Containers[i].TerminationMessagePath = corev1.TerminationMessagePathDefault
		spec.Containers[i].TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	live.Status.NumberReady = 2
	return live
}

func TestDaemonSetUpToDate(t *testing.T) {
	render := func(allowList bool, tweaks ...svcTweak) *appsv1.DaemonSet {
		ds, err := newDaemonSet(makeService(tweaks...), daemonSetParams{keys: testKeys, namespace: "kube-system", allowList: allowList})
		require.NoError(t, err)
		return ds
	}
	tests := []struct {
		name     string
		live     *appsv1.DaemonSet
		want     *appsv1.DaemonSet
		upToDate bool
	}{
		{name: "the same render with server defaults is up to date",
			live: liveDaemonSet(t, render(false, withPool("blue"), withLocal())), want: render(false, withPool("blue"), withLocal()), upToDate: true},
		{name: "a stale allow-list selector is drift (K3s #14625)",
			live: liveDaemonSet(t, render(true)), want: render(false)},
		{name: "a new allow-list selector is a change",
			live: liveDaemonSet(t, render(false)), want: render(true)},
		{name: "another pool is a change in allow-list mode",
			live: liveDaemonSet(t, render(true, withPool("blue"))), want: render(true, withPool("green"))},
		{name: "a pool becomes affinity when allow-list mode starts",
			live: liveDaemonSet(t, render(false, withPool("blue"))), want: render(true, withPool("blue"))},
		{name: "other source ranges are a change",
			live: liveDaemonSet(t, render(false)), want: render(false, withSourceRanges("192.0.2.0/24"))},
		{name: "another port is a change",
			live: liveDaemonSet(t, render(false)), want: render(false, withPorts(svcPort(corev1.ProtocolTCP, 443, 30443)))},
		{name: "a priority class override is a change",
			live: liveDaemonSet(t, render(false)), want: render(false, withAnnotation(testKeys.PriorityClassName, ""))},
		{name: "extra tolerations are a change",
			live: liveDaemonSet(t, render(false)), want: render(false, withAnnotation(testKeys.Tolerations, `[{"key":"a","operator":"Exists"}]`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.upToDate, daemonSetUpToDate(tt.live, tt.want))
		})
	}
}

func TestApplyConfigurationCarriesTheRenderWithoutStatus(t *testing.T) {
	ds, err := newDaemonSet(makeService(withPool("blue")), daemonSetParams{keys: testKeys, namespace: "kube-system", allowList: true})
	require.NoError(t, err)
	ac, err := applyConfiguration(ds)
	require.NoError(t, err)
	assert.Nil(t, ac.Status)
	assert.Equal(t, "DaemonSet", *ac.Kind)
	assert.Equal(t, ds.Name, *ac.Name)
	assert.Equal(t, ds.Spec.Template.Spec.NodeSelector, ac.Spec.Template.Spec.NodeSelector)
	assert.Len(t, ac.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, 2)
	data, err := json.Marshal(ac)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "creationTimestamp", "an apply request must not claim fields it does not set")
}
