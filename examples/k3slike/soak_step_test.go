package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSoakStepKeepsASteadyPopulation replays the soak's steps on a set of names: every
// delete names a live object, and each kind stays within its window while every object is
// replaced many times over.
func TestSoakStepKeepsASteadyPopulation(t *testing.T) {
	kindName := regexp.MustCompile(`(?m)^kind: (\w+)\nmetadata:\s*(?:\{name: |\n  name: )([\w-]+)`)
	alive := map[string]bool{}
	created := map[string]int{}
	peak := map[string]int{}
	for i := range 2000 {
		apply, deletes := soakStep(i)
		for _, d := range deletes {
			require.True(t, alive[d], "step %d deletes %s, which is not there", i, d)
			delete(alive, d)
		}
		docs := strings.Split(apply, "\n---\n")
		matches := kindName.FindAllStringSubmatch(apply, -1)
		require.Len(t, matches, len(docs), "step %d: every document has a kind and a name:\n%s", i, apply)
		for _, m := range matches {
			key := strings.ToLower(m[1]) + "/" + m[2]
			if !alive[key] {
				created[m[1]]++
			}
			alive[key] = true
		}
		count := map[string]int{}
		for key := range alive {
			count[key[:strings.Index(key, "/")]]++
		}
		for kind, n := range count {
			peak[kind] = max(peak[kind], n)
		}
	}
	assert.Equal(t, map[string]int{"pod": soakPodWindow, "networkpolicy": soakPolicyWindow, "node": soakNodeWindow, "service": soakSvcWindow}, peak)
	for kind, n := range created {
		assert.Greater(t, n, 10*peak[strings.ToLower(kind)], "%s objects are replaced many times", kind)
	}
}

func TestPromValues(t *testing.T) {
	page := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_memstats_heap_inuse_bytes 1.048576e+07\nprocess_open_fds{x=\"y\"} 3\n"
	assert.Equal(t, map[string]float64{"go_goroutines": 42, "go_memstats_heap_inuse_bytes": 10485760},
		promValues(page, "go_goroutines", "go_memstats_heap_inuse_bytes", "process_open_fds"))
}
