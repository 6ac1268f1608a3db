package servicelb

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const testDSName = "svclb-web-35a5ccb3"

func testParams() daemonSetParams {
	return daemonSetParams{keys: testKeys, namespace: "kube-system"}
}

type dsTweak func(*appsv1.DaemonSet)

// wantDaemonSet is K3s's DaemonSet for makeService(), changed by tweaks.
func wantDaemonSet(tweaks ...dsTweak) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      testDSName,
			Namespace: "kube-system",
			Labels: map[string]string{
				"svccontroller.k3s.cattle.io/nodeselector": "false",
				"svccontroller.k3s.cattle.io/svcname":      "web",
				"svccontroller.k3s.cattle.io/svcnamespace": "default",
			},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": testDSName}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					"app":                                 testDSName,
					"svccontroller.k3s.cattle.io/svcname": "web",
					"svccontroller.k3s.cattle.io/svcnamespace": "default",
				}},
				Spec: corev1.PodSpec{
					PriorityClassName:            "system-node-critical",
					ServiceAccountName:           "svclb",
					AutomountServiceAccountToken: new(false),
					SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{
						{Name: "net.ipv4.ip_forward", Value: "1"},
					}},
					Containers: []corev1.Container{
						wantContainer("TCP", 80, "80", "0.0.0.0/0", clusterIPsEnv("10.43.0.10")),
					},
					Tolerations: []corev1.Toleration{
						{Key: "node-role.kubernetes.io/control-plane", Operator: "Exists", Effect: "NoSchedule"},
						{Key: "CriticalAddonsOnly", Operator: "Exists"},
					},
				},
			},
		},
	}
	for _, t := range tweaks {
		t(ds)
	}
	return ds
}

func wantContainer(proto string, port int32, destPort, ranges string, destIPs corev1.EnvVar) corev1.Container {
	name := "lb-" + strings.ToLower(proto) + "-" + strconv.Itoa(int(port))
	return corev1.Container{
		Name:            name,
		Image:           "rancher/klipper-lb:v0.4.17",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Ports: []corev1.ContainerPort{{
			Name: name, ContainerPort: port, HostPort: port, Protocol: corev1.Protocol(proto),
		}},
		Env: []corev1.EnvVar{
			{Name: "SRC_PORT", Value: strconv.Itoa(int(port))},
			{Name: "SRC_RANGES", Value: ranges},
			{Name: "DEST_PROTO", Value: proto},
			{Name: "DEST_PORT", Value: destPort},
			destIPs,
		},
		SecurityContext: &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
		},
	}
}

func clusterIPsEnv(ips string) corev1.EnvVar { return corev1.EnvVar{Name: "DEST_IPS", Value: ips} }

func hostIPsEnv() corev1.EnvVar {
	return corev1.EnvVar{Name: "DEST_IPS", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIPs"},
	}}
}

func wantContainers(cs ...corev1.Container) dsTweak {
	return func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers = cs }
}

func wantSysctls(names ...string) dsTweak {
	return func(ds *appsv1.DaemonSet) {
		var s []corev1.Sysctl
		for _, n := range names {
			s = append(s, corev1.Sysctl{Name: n, Value: "1"})
		}
		ds.Spec.Template.Spec.SecurityContext.Sysctls = s
	}
}

func wantPodSpec(f func(*corev1.PodSpec)) dsTweak {
	return func(ds *appsv1.DaemonSet) { f(&ds.Spec.Template.Spec) }
}

func wantName(name string) dsTweak {
	return func(ds *appsv1.DaemonSet) {
		ds.Name = name
		ds.Spec.Selector.MatchLabels["app"] = name
		ds.Spec.Template.Labels["app"] = name
	}
}

func wantService(ns, name string) dsTweak {
	return func(ds *appsv1.DaemonSet) {
		for _, l := range []map[string]string{ds.Labels, ds.Spec.Template.Labels} {
			l["svccontroller.k3s.cattle.io/svcname"] = name
			l["svccontroller.k3s.cattle.io/svcnamespace"] = ns
		}
	}
}

func wantPoolAffinity(pool string) dsTweak {
	return wantPodSpec(func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "svccontroller.k3s.cattle.io/lbpool", Operator: corev1.NodeSelectorOpIn, Values: []string{pool},
				}}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "lbpool.svccontroller.k3s.cattle.io/" + pool, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"},
				}}},
			}},
		}}
	})
}

func wantAllowList() dsTweak {
	return func(ds *appsv1.DaemonSet) {
		ds.Labels["svccontroller.k3s.cattle.io/nodeselector"] = "true"
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"svccontroller.k3s.cattle.io/enablelb": "true"}
	}
}

func TestNewDaemonSet(t *testing.T) {
	long := strings.Repeat("a", 47) + "-" + "bcd" // 51 characters, cut after the hyphen
	tests := []struct {
		name   string
		svc    *corev1.Service
		params func(*daemonSetParams)
		want   *appsv1.DaemonSet
	}{
		{
			name: "a single-port IPv4 Service renders K3s's DaemonSet",
			svc:  makeService(),
			want: wantDaemonSet(),
		},
		{
			name: "a long Service name is cut to 48 characters without a trailing hyphen everywhere the name is used",
			svc:  makeService(withName("default", long)),
			want: wantDaemonSet(wantService("default", long), wantName("svclb-"+strings.Repeat("a", 47)+"-35a5ccb3")),
		},
		{
			name: "each port and protocol gets its own container named lb-<protocol>-<port>",
			svc: makeService(withPorts(svcPort("TCP", 443, 30443), svcPort("UDP", 53, 30053),
				svcPort("TCP", 53, 30054), svcPort("SCTP", 9999, 30999))),
			want: wantDaemonSet(wantContainers(
				wantContainer("TCP", 443, "443", "0.0.0.0/0", clusterIPsEnv("10.43.0.10")),
				wantContainer("UDP", 53, "53", "0.0.0.0/0", clusterIPsEnv("10.43.0.10")),
				wantContainer("TCP", 53, "53", "0.0.0.0/0", clusterIPsEnv("10.43.0.10")),
				wantContainer("SCTP", 9999, "9999", "0.0.0.0/0", clusterIPsEnv("10.43.0.10")),
			)),
		},
		{
			name: "a port without protocol is TCP, the API default",
			svc:  makeService(withPorts(svcPort("", 80, 30080))),
			want: wantDaemonSet(),
		},
		{
			name: "externalTrafficPolicy Local forwards to the node port on every host IP",
			svc:  makeService(withLocal(), withPorts(svcPort("TCP", 443, 30443), svcPort("UDP", 443, 31443))),
			want: wantDaemonSet(wantContainers(
				wantContainer("TCP", 443, "30443", "0.0.0.0/0", hostIPsEnv()),
				wantContainer("UDP", 443, "31443", "0.0.0.0/0", hostIPsEnv()),
			)),
		},
		{
			name: "a dual-stack Service forwards both families to both cluster IPs and accepts both everywhere",
			svc:  makeService(withStack("10.43.0.10", "fd00:43::10")),
			want: wantDaemonSet(
				wantSysctls("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"),
				wantContainers(wantContainer("TCP", 80, "80", "0.0.0.0/0,::/0", clusterIPsEnv("10.43.0.10,fd00:43::10"))),
			),
		},
		{
			name: "an IPv6-primary dual-stack Service lists sysctls and cluster IPs in its family order",
			svc:  makeService(withStack("fd00:43::10", "10.43.0.10")),
			want: wantDaemonSet(
				wantSysctls("net.ipv6.conf.all.forwarding", "net.ipv4.ip_forward"),
				wantContainers(wantContainer("TCP", 80, "80", "0.0.0.0/0,::/0", clusterIPsEnv("fd00:43::10,10.43.0.10"))),
			),
		},
		{
			name: "an IPv6-only Service turns on IPv6 forwarding only and defaults to 0.0.0.0/0,::/0 as in K3s",
			svc:  makeService(withStack("fd00:43::10")),
			want: wantDaemonSet(
				wantSysctls("net.ipv6.conf.all.forwarding"),
				wantContainers(wantContainer("TCP", 80, "80", "0.0.0.0/0,::/0", clusterIPsEnv("fd00:43::10"))),
			),
		},
		{
			name: "source ranges from the spec are canonical and sorted numerically",
			svc:  makeService(withSourceRanges("192.168.1.7/24", "10.0.0.10/32", "10.0.0.9/32")),
			want: wantDaemonSet(wantContainers(
				wantContainer("TCP", 80, "80", "10.0.0.9/32,10.0.0.10/32,192.168.1.0/24", clusterIPsEnv("10.43.0.10")))),
		},
		{
			name: "source ranges come from the annotation when the spec has none",
			svc:  makeService(withAnnotation(SourceRangesAnnotation, "192.168.0.0/16, 10.0.0.0/8")),
			want: wantDaemonSet(wantContainers(
				wantContainer("TCP", 80, "80", "10.0.0.0/8,192.168.0.0/16", clusterIPsEnv("10.43.0.10")))),
		},
		{
			name: "the priority class annotation overrides the default",
			svc:  makeService(withAnnotation(testKeys.PriorityClassName, "lb-critical")),
			want: wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "lb-critical" })),
		},
		{
			name: "an empty priority class annotation leaves the pods without a priority class, as in K3s",
			svc:  makeService(withAnnotation(testKeys.PriorityClassName, "")),
			want: wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "" })),
		},
		{
			name:   "a configured default priority class replaces system-node-critical",
			svc:    makeService(),
			params: func(p *daemonSetParams) { p.priorityClassName = "cluster-lb" },
			want:   wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) { s.PriorityClassName = "cluster-lb" })),
		},
		{
			name: "annotation tolerations come after the default ones",
			svc: makeService(withAnnotation(testKeys.Tolerations,
				`[{"key":"dedicated","value":"lb","effect":"NoSchedule"}]`)),
			want: wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) {
				s.Tolerations = append(s.Tolerations, corev1.Toleration{
					Key: "dedicated", Operator: "Equal", Value: "lb", Effect: "NoSchedule",
				})
			})),
		},
		{
			name:   "the system default registry prefixes the image",
			svc:    makeService(),
			params: func(p *daemonSetParams) { p.registry = "registry.example.com/" },
			want: wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) {
				s.Containers[0].Image = "registry.example.com/rancher/klipper-lb:v0.4.17"
			})),
		},
		{
			name:   "a configured image is used as given",
			svc:    makeService(),
			params: func(p *daemonSetParams) { p.image = "mirror.local/klipper-lb:dev" },
			want: wantDaemonSet(wantPodSpec(func(s *corev1.PodSpec) {
				s.Containers[0].Image = "mirror.local/klipper-lb:dev"
			})),
		},
		{
			name:   "allow-list mode selects enablelb=true nodes and labels the DaemonSet nodeselector=true",
			svc:    makeService(),
			params: func(p *daemonSetParams) { p.allowList = true },
			want:   wantDaemonSet(wantAllowList()),
		},
		{
			name: "outside allow-list mode a pool adds nothing, as in K3s",
			svc:  makeService(withPool("edge")),
			want: wantDaemonSet(),
		},
		{
			name:   "a pool in allow-list mode is required node affinity on either pool label, beside the node selector",
			svc:    makeService(withPool("edge")),
			params: func(p *daemonSetParams) { p.allowList = true },
			want:   wantDaemonSet(wantAllowList(), wantPoolAffinity("edge")),
		},
		{
			name:   "an empty pool label adds no affinity",
			svc:    makeService(withPool("")),
			params: func(p *daemonSetParams) { p.allowList = true },
			want:   wantDaemonSet(wantAllowList()),
		},
		{
			name:   "the namespace comes from the params",
			svc:    makeService(),
			params: func(p *daemonSetParams) { p.namespace = "svclb-system" },
			want:   wantDaemonSet(func(ds *appsv1.DaemonSet) { ds.Namespace = "svclb-system" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testParams()
			if tt.params != nil {
				tt.params(&p)
			}
			got, err := newDaemonSet(tt.svc, p)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewDaemonSetRKE2Keys(t *testing.T) {
	p := testParams()
	p.keys = NewKeys("rke2")
	p.allowList = true
	got, err := newDaemonSet(makeService(withLabel("svccontroller.rke2.cattle.io/lbpool", "edge")), p)
	require.NoError(t, err)

	assert.Equal(t, map[string]string{
		"svccontroller.rke2.cattle.io/nodeselector": "true",
		"svccontroller.rke2.cattle.io/svcname":      "web",
		"svccontroller.rke2.cattle.io/svcnamespace": "default",
	}, got.Labels)
	assert.Equal(t, map[string]string{"svccontroller.rke2.cattle.io/enablelb": "true"}, got.Spec.Template.Spec.NodeSelector)
	terms := got.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	require.Len(t, terms, 2)
	assert.Equal(t, "svccontroller.rke2.cattle.io/lbpool", terms[0].MatchExpressions[0].Key)
	assert.Equal(t, "lbpool.svccontroller.rke2.cattle.io/edge", terms[1].MatchExpressions[0].Key)
}

func TestNewDaemonSetErrors(t *testing.T) {
	tolerationsPath := "metadata.annotations[svccontroller.k3s.cattle.io/tolerations]"
	tests := []struct {
		name       string
		svc        *corev1.Service
		wantFields []string
	}{
		{
			name:       "an invalid spec source range is reported at its index",
			svc:        makeService(withSourceRanges("10.0.0.0/8", "10.0.0.300/32")),
			wantFields: []string{"spec.loadBalancerSourceRanges[1]"},
		},
		{
			name:       "an invalid annotation source range is reported on the annotation",
			svc:        makeService(withAnnotation(SourceRangesAnnotation, "10.0.0.0/8,nope")),
			wantFields: []string{"metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"},
		},
		{
			name:       "a tolerations annotation that is neither JSON nor YAML is reported",
			svc:        makeService(withAnnotation(testKeys.Tolerations, `[{"key": "a"`)),
			wantFields: []string{tolerationsPath},
		},
		{
			name:       "an invalid toleration is reported at its index",
			svc:        makeService(withAnnotation(testKeys.Tolerations, `[{"key":"a","operator":"Exists"},{"value":"x"}]`)),
			wantFields: []string{tolerationsPath + "[1].operator"},
		},
		{
			name: "ETP Local without allocated node ports is refused rather than forwarding to port 0",
			svc: makeService(withLocal(), withPorts(svcPort("TCP", 80, 30080), svcPort("TCP", 443, 0)),
				func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = new(false) }),
			wantFields: []string{"spec.ports[1].nodePort"},
		},
		{
			name:       "a Service without ports is refused",
			svc:        makeService(withPorts()),
			wantFields: []string{"spec.ports"},
		},
		{
			name: "a Service without cluster IPs is refused under ETP Cluster",
			svc: makeService(func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			}),
			wantFields: []string{"spec.clusterIPs"},
		},
		{
			name: "every problem is reported at once",
			svc: makeService(withSourceRanges("bad"), withAnnotation(testKeys.Tolerations, "key: a"),
				withLocal(), withPorts(svcPort("TCP", 80, 0))),
			wantFields: []string{"spec.loadBalancerSourceRanges[0]", tolerationsPath, "spec.ports[0].nodePort"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newDaemonSet(tt.svc, testParams())
			require.Error(t, err)
			assert.Nil(t, got)
			var invalid *invalidServiceError
			require.ErrorAs(t, err, &invalid, "the controller must recognise a bad spec")
			var fields []string
			for _, e := range invalid.errs {
				fields = append(fields, e.Field)
			}
			assert.Equal(t, tt.wantFields, fields)
			var fe *field.Error
			assert.ErrorAs(t, err, &fe, "each field error is reachable with errors.As")
			assert.Contains(t, err.Error(), "default/web", "the error names the Service")
		})
	}
}

func TestNewDaemonSetIsDeterministic(t *testing.T) {
	svc := makeService(withStack("10.43.0.10", "fd00:43::10"), withPool("edge"), withLocal(),
		withSourceRanges("2001:db8::/32", "10.0.0.0/8", "192.168.0.0/16"),
		withAnnotation(testKeys.Tolerations, "- key: b\n  operator: Exists\n- key: a\n  operator: Exists"),
		withPorts(svcPort("TCP", 443, 30443), svcPort("UDP", 53, 30053)))
	before := svc.DeepCopy()
	p := testParams()
	p.allowList = true

	first, err := newDaemonSet(svc, p)
	require.NoError(t, err)
	second, err := newDaemonSet(svc, p)
	require.NoError(t, err)
	assert.Equal(t, first, second, "two renders of one Service are equal")
	assert.Equal(t, before, svc, "rendering does not modify the Service")

	reordered := svc.DeepCopy()
	reordered.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16", "2001:db8::/32", "10.0.0.0/8", "10.0.0.0/8"}
	third, err := newDaemonSet(reordered, p)
	require.NoError(t, err)
	assert.Equal(t, first, third, "the order and repetition of source ranges do not matter")

	// No two containers share a pointer, so a caller changing one cannot change another.
	cs := first.Spec.Template.Spec.Containers
	assert.NotSame(t, cs[0].Env[4].ValueFrom, cs[1].Env[4].ValueFrom)
}

func TestDaemonSetName(t *testing.T) {
	tests := []struct {
		name    string
		svcName string
		uid     types.UID
		want    string
	}{
		{
			name:    "a short name keeps the whole Service name and the UID's first 8 characters",
			svcName: "a-service",
			uid:     "35a5ccb3-9b7b-4a3d-8f2e-123456789abc",
			want:    "svclb-a-service-35a5ccb3",
		},
		{
			name:    "a 51-character name is cut to 48 characters",
			svcName: strings.Repeat("x", 51),
			uid:     "35a5ccb3-9b7b-4a3d-8f2e-123456789abc",
			want:    "svclb-" + strings.Repeat("x", 48) + "-35a5ccb3",
		},
		{
			name:    "hyphens left at the end of the cut are removed",
			svcName: strings.Repeat("x", 45) + "---yyyy",
			uid:     "35a5ccb3-9b7b-4a3d-8f2e-123456789abc",
			want:    "svclb-" + strings.Repeat("x", 45) + "-35a5ccb3",
		},
		{
			name:    "a 48-character name ending in a hyphen is not cut",
			svcName: strings.Repeat("x", 47) + "-",
			uid:     "35a5ccb3-9b7b-4a3d-8f2e-123456789abc",
			want:    "svclb-" + strings.Repeat("x", 47) + "--35a5ccb3",
		},
		{
			name:    "a UID shorter than 8 characters is used whole",
			svcName: "web",
			uid:     "abc",
			want:    "svclb-web-abc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := daemonSetName(tt.svcName, tt.uid)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), 63)
		})
	}
}

func TestSourceRanges(t *testing.T) {
	tests := []struct {
		name       string
		svc        *corev1.Service
		want       []string
		wantFields []string
	}{
		{
			name: "an IPv4 Service without ranges accepts every IPv4 client",
			svc:  makeService(),
			want: []string{"0.0.0.0/0"},
		},
		{
			name: "a dual-stack Service without ranges accepts every client of both families",
			svc:  makeService(withStack("fd00:43::10", "10.43.0.10")),
			want: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name: "an IPv6-only Service without ranges gets K3s's default, 0.0.0.0/0 and ::/0",
			svc:  makeService(withStack("fd00:43::10")),
			want: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name: "a Service without families falls back to its cluster IPs' family",
			svc: makeService(func(s *corev1.Service) {
				s.Spec.IPFamilies, s.Spec.ClusterIPs, s.Spec.ClusterIP = nil, nil, "fd00:43::10"
			}),
			want: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name: "an IPv4 Service without families gets 0.0.0.0/0 alone",
			svc: makeService(func(s *corev1.Service) {
				s.Spec.IPFamilies, s.Spec.ClusterIPs, s.Spec.ClusterIP = nil, nil, "10.43.0.10"
			}),
			want: []string{"0.0.0.0/0"},
		},
		{
			name: "an explicit 0.0.0.0/0 on an IPv6-only Service also admits IPv6, as in K3s",
			svc:  makeService(withStack("fd00:43::10"), withAnnotation(SourceRangesAnnotation, "0.0.0.0/0")),
			want: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name: "0.0.0.0/0 beside another range is taken as written",
			svc:  makeService(withStack("10.43.0.10", "fd00:43::10"), withSourceRanges("0.0.0.0/0", "10.0.0.0/8")),
			want: []string{"0.0.0.0/0", "10.0.0.0/8"},
		},
		{
			name: "spec ranges are masked, sorted numerically with IPv4 first, and deduplicated",
			svc: makeService(withSourceRanges("2001:db8::1/32", "192.168.1.0/24", "10.0.0.10/32",
				"10.1.2.3/8", "10.0.0.9/32", "10.0.0.9/32")),
			want: []string{"10.0.0.0/8", "10.0.0.9/32", "10.0.0.10/32", "192.168.1.0/24", "2001:db8::/32"},
		},
		{
			name: "the spec field wins over the annotation",
			svc:  makeService(withSourceRanges("10.0.0.0/8"), withAnnotation(SourceRangesAnnotation, "192.168.0.0/16")),
			want: []string{"10.0.0.0/8"},
		},
		{
			name: "annotation ranges are trimmed and empty entries skipped",
			svc:  makeService(withAnnotation(SourceRangesAnnotation, " 192.168.0.0/16 ,, 10.0.0.0/8,")),
			want: []string{"10.0.0.0/8", "192.168.0.0/16"},
		},
		{
			name: "a blank annotation means no restriction",
			svc:  makeService(withAnnotation(SourceRangesAnnotation, "  ")),
			want: []string{"0.0.0.0/0"},
		},
		{
			name: "an explicit 0.0.0.0/0 on a dual-stack Service also admits IPv6, as in K3s",
			svc:  makeService(withStack("10.43.0.10", "fd00:43::10"), withSourceRanges("0.0.0.0/0")),
			want: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name: "an IPv4 range on a dual-stack Service admits no IPv6 client",
			svc:  makeService(withStack("10.43.0.10", "fd00:43::10"), withSourceRanges("10.0.0.0/8")),
			want: []string{"10.0.0.0/8"},
		},
		{
			name: "IPv4-mapped ranges are the IPv4 ranges they map, so they match IPv4 clients",
			svc:  makeService(withSourceRanges("::ffff:10.0.0.0/104", "::ffff:192.168.1.7/128", "::ffff:0:0/96")),
			want: []string{"0.0.0.0/0", "10.0.0.0/8", "192.168.1.7/32"},
		},
		{
			name: "an IPv4-mapped range in the annotation is unmapped too",
			svc:  makeService(withAnnotation(SourceRangesAnnotation, "::ffff:172.16.0.0/108")),
			want: []string{"172.16.0.0/12"},
		},
		{
			name: "a range wider than the mapped block stays IPv6",
			svc:  makeService(withStack("fd00:43::10"), withSourceRanges("::ffff:0:0/80")),
			want: []string{"::/80"},
		},
		{
			name:       "every invalid spec entry is reported",
			svc:        makeService(withSourceRanges("10.0.0.0/33", "10.0.0.0/8", "example.com")),
			wantFields: []string{"spec.loadBalancerSourceRanges[0]", "spec.loadBalancerSourceRanges[2]"},
		},
		{
			name:       "an address without a prefix length is invalid",
			svc:        makeService(withAnnotation(SourceRangesAnnotation, "10.0.0.1")),
			wantFields: []string{"metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := sourceRanges(tt.svc, serviceFamilies(tt.svc))
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			assert.Equal(t, tt.wantFields, fields)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAnnotationTolerations(t *testing.T) {
	path := "metadata.annotations[svccontroller.k3s.cattle.io/tolerations]"
	tests := []struct {
		name       string
		annotation string
		want       []corev1.Toleration
		wantFields []string
	}{
		{
			name:       "a JSON list is parsed and an empty operator becomes Equal",
			annotation: `[{"key":"dedicated","value":"lb","effect":"NoSchedule"},{"key":"spot","operator":"Exists"}]`,
			want: []corev1.Toleration{
				{Key: "dedicated", Operator: "Equal", Value: "lb", Effect: "NoSchedule"},
				{Key: "spot", Operator: "Exists"},
			},
		},
		{
			name:       "a YAML list is parsed the same way",
			annotation: "- key: dedicated\n  value: lb\n  effect: NoSchedule\n- key: spot\n  operator: Exists\n",
			want: []corev1.Toleration{
				{Key: "dedicated", Operator: "Equal", Value: "lb", Effect: "NoSchedule"},
				{Key: "spot", Operator: "Exists"},
			},
		},
		{
			name:       "Exists without a key tolerates everything",
			annotation: `[{"operator":"Exists"}]`,
			want:       []corev1.Toleration{{Operator: "Exists"}},
		},
		{
			name:       "NoExecute may bound its toleration in seconds",
			annotation: `[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":30}]`,
			want:       []corev1.Toleration{{Key: "k", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: new(int64(30))}},
		},
		{
			name:       "a blank annotation adds nothing",
			annotation: " \n",
		},
		{
			name:       "broken JSON is reported on the annotation",
			annotation: `[{"key":`,
			wantFields: []string{path},
		},
		{
			name:       "a YAML mapping instead of a list is reported on the annotation",
			annotation: "key: dedicated\noperator: Exists",
			wantFields: []string{path},
		},
		{
			name:       "a wrongly typed field is reported on the annotation",
			annotation: `[{"key":"k","tolerationSeconds":"soon"}]`,
			wantFields: []string{path},
		},
		{
			name:       "an empty key needs Exists",
			annotation: `[{"operator":"Equal","value":"x"}]`,
			wantFields: []string{path + "[0].operator"},
		},
		{
			name:       "Exists takes no value",
			annotation: `[{"key":"k","operator":"Exists","value":"x"}]`,
			wantFields: []string{path + "[0].value"},
		},
		{
			name:       "an unknown operator is refused",
			annotation: `[{"key":"k","operator":"Gt","value":"3"}]`,
			wantFields: []string{path + "[0].operator"},
		},
		{
			name:       "an unknown effect is refused",
			annotation: `[{"key":"k","operator":"Exists","effect":"NoRun"}]`,
			wantFields: []string{path + "[0].effect"},
		},
		{
			name:       "tolerationSeconds needs NoExecute",
			annotation: `[{"key":"k","operator":"Exists","effect":"NoSchedule","tolerationSeconds":5}]`,
			wantFields: []string{path + "[0].tolerationSeconds"},
		},
		{
			name:       "an invalid key and value are refused with their index",
			annotation: `[{"key":"ok","operator":"Exists"},{"key":"bad key!","value":"also bad!"}]`,
			wantFields: []string{path + "[1].value", path + "[1].key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := annotationTolerations(makeService(withAnnotation(testKeys.Tolerations, tt.annotation)), testKeys)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			assert.Equal(t, tt.wantFields, fields)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestInvalidServiceErrorJoinsFieldErrors(t *testing.T) {
	err := &invalidServiceError{errs: field.ErrorList{
		field.Required(field.NewPath("spec", "ports"), "x"),
		field.Required(field.NewPath("spec", "clusterIPs"), "y"),
	}}
	assert.Len(t, err.Unwrap(), 2)
	assert.Equal(t, "spec.ports: Required value: x; spec.clusterIPs: Required value: y", err.Error())
	assert.True(t, errors.Is(err, err.Unwrap()[1]))
}
