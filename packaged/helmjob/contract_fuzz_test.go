package helmjob

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/packaged/helm"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// FuzzJobContract builds the job of any HelmChart and reads it back as the job's pod does
// (helm.JobEnvFrom, helm.ParseJobArgs): the controller and the job agree on every field they
// pass, Build never panics, and the same chart always gives the same hash.
func FuzzJobContract(f *testing.F) {
	f.Add("traefik", "kube-system", "", "https://%{KUBERNETES_API}%/static/charts/traefik.tgz", "", "", "a: 1\n", "b: {c: 2}", "image.tag", "v1,v2", int32(0), uint8(0))
	f.Add("x", "ns", "web", "x", "https://charts.example", "1.2.3", "", "", "replicas", "", int32(3), uint8(7))
	f.Add("x", "ns", "", "", "", "", "[", "- 1", "a", "TRUE", int32(0), uint8(2))
	f.Fuzz(func(t *testing.T, name, ns, target, chart, repo, version, valuesContent, values, setKey, setStr string, setInt int32, flags uint8) {
		hc := &helmchart.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		hc.Spec = helmchart.HelmChartSpec{TargetNamespace: target, Chart: chart, Repo: repo, Version: version,
			ValuesContent: valuesContent, CreateNamespace: flags&2 != 0, TakeOwnership: flags&4 != 0}
		_ = yaml.Unmarshal([]byte(values), &hc.Spec.Values)
		if setKey != "" {
			v := intstr.FromString(setStr)
			if flags&1 != 0 {
				v = intstr.FromInt32(setInt)
			}
			hc.Spec.Set = map[string]intstr.IntOrString{setKey: v}
		}
		out, err := Build(Inputs{Chart: hc}, JobOptions{})
		if err != nil {
			return
		}
		again, err := Build(Inputs{Chart: hc}, JobOptions{})
		require.NoError(t, err)
		require.Equal(t, out.ConfigHash, again.ConfigHash)

		c := out.Job.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		jobEnv, err := helm.JobEnvFrom(func(k string) string { return env[k] })
		if name != "" && ns != "" {
			require.NoError(t, err, "the job reads the environment the controller wrote")
		}
		require.Equal(t, name, jobEnv.Name)
		require.Equal(t, hc.TargetNamespace(), jobEnv.TargetNamespace)
		require.Equal(t, helmchart.FailurePolicyReinstall, jobEnv.FailurePolicy)
		require.Equal(t, out.ConfigHash, jobEnv.ConfigHash)
		require.True(t, jobEnv.HasExpectedRevision)

		args, err := helm.ParseJobArgs(c.Args)
		require.NoError(t, err, "the job parses the arguments the controller wrote: %q", c.Args)
		require.Equal(t, target, args.Namespace)
		require.Equal(t, version, args.Version)
		require.Equal(t, hc.Spec.CreateNamespace, args.CreateNamespace)
		require.Equal(t, hc.Spec.TakeOwnership, args.TakeOwnership)
		if setKey != "" {
			require.Equal(t, []helmchart.SetArg{helmchart.SetArgFor(setKey, hc.Spec.Set[setKey])}, args.Set)
		}
		require.Equal(t, corev1.RestartPolicyOnFailure, out.Job.Spec.Template.Spec.RestartPolicy)
	})
}
