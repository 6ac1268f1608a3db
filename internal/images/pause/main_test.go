package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// runEnv makes the test binary run pause's main loop instead of the tests.
const runEnv = "K3SNET_PAUSE_TEST_RUN"

func TestMain(m *testing.M) {
	if os.Getenv(runEnv) != "" {
		os.Exit(run(func() { fmt.Println("ready") }))
	}
	os.Exit(m.Run())
}

func TestStopSignalsExitZero(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String()+" ends pause with status 0", func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), runEnv+"=1")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			// A signal sent before pause catches it would end the process the default way.
			line, err := bufio.NewReader(stdout).ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "ready\n", line)
			require.NoError(t, cmd.Process.Signal(sig))
			require.NoError(t, cmd.Wait())
			assert.Equal(t, 0, cmd.ProcessState.ExitCode())
		})
	}
}

func TestReapCollectsExitedChildren(t *testing.T) {
	var pids []int
	for range 3 {
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	// Wait until each child is a zombie, without reaping it (WNOWAIT).
	for _, pid := range pids {
		var info unix.Siginfo
		require.NoError(t, unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil))
	}
	assert.Equal(t, len(pids), reap())
	assert.Equal(t, 0, reap(), "nothing is left to reap")
}
