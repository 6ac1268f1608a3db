package controlplane

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestDatastoreIsReachableByItsOwnerOnly starts a control plane in a data directory deeper
// than a unix socket path may be long, and checks that kine listens on no TCP port, only on a
// socket in a directory no other user may enter; that the API server works through it; and
// that a restart on the same directory keeps the cluster's objects.
func TestDatastoreIsReachableByItsOwnerOnly(t *testing.T) {
	binDir, err := FindBinDir()
	if errors.Is(err, ErrBinariesMissing) && os.Getenv("CI") == "" {
		t.Skipf("needs the control-plane binaries: %v", err)
	}
	require.NoError(t, err)
	dataDir := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "server")
	require.Greater(t, len(filepath.Join(dataDir, "db", kineSocket)), 108, "longer than a socket path may be")
	require.NoError(t, os.MkdirAll(filepath.Join(dataDir, "db"), 0o755), "a mode that Start must tighten")
	cfg := Config{DataDir: dataDir, BinDir: binDir, DisableKwok: true}

	cp, err := Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	kine := cp.procs[0]
	require.Equal(t, "kine", kine.Name())

	sockets := socketInodes(t, kine.Pid())
	tcp := listeningTCPInodes(t)
	var kineTCP []string
	for _, inode := range sockets {
		if slices.Contains(tcp, inode) {
			kineTCP = append(kineTCP, inode)
		}
	}
	assert.Empty(t, kineTCP, "kine listens on TCP")
	// The kernel names a socket by the path it was bound with, relative to kine's directory.
	var paths []string
	listening := listeningUnixSockets(t)
	for _, inode := range sockets {
		if path, ok := listening[inode]; ok {
			paths = append(paths, path)
		}
	}
	assert.Equal(t, []string{kineSocket}, paths, "kine listens on its unix socket only")
	socket := filepath.Join(dataDir, "db", kineSocket)
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(kine.Pid()) + "/cwd")
	require.NoError(t, err)
	assert.Equal(t, filepath.Dir(socket), cwd)
	require.NoError(t, isSocket(socket))

	info, err := os.Stat(filepath.Dir(socket))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "only the owner enters the socket's directory")
	assert.Equal(t, uint32(os.Geteuid()), info.Sys().(*syscall.Stat_t).Uid)

	client, err := kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	_, err = client.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, cp.Stop())
	cp, err = Start(t.Context(), cfg)
	require.NoError(t, err)
	client, err = kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)
	got, err := client.CoreV1().ConfigMaps("default").Get(t.Context(), "kept", metav1.GetOptions{})
	require.NoError(t, err, "a restart on the same data directory keeps the datastore")
	assert.Equal(t, cm.Data, got.Data)
}

func TestPrivateDirRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(dir, "db")))
	assert.ErrorContains(t, privateDir(filepath.Join(dir, "db")), "must be a directory")
}

// socketInodes returns the inodes of the sockets process pid holds open.
func socketInodes(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/fd/*")
	require.NoError(t, err)
	var inodes []string
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes = append(inodes, strings.TrimSuffix(inode, "]"))
		}
	}
	require.NotEmpty(t, inodes, "process %d holds no socket", pid)
	return inodes
}

// listeningTCPInodes returns the inodes of every listening TCP socket, IPv4 and IPv6.
func listeningTCPInodes(t *testing.T) []string {
	t.Helper()
	var inodes []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, f := range procNetRows(t, table) {
			// sl local_address rem_address st ... inode; st 0A is LISTEN.
			if len(f) > 9 && f[3] == "0A" {
				inodes = append(inodes, f[9])
			}
		}
	}
	return inodes
}

// listeningUnixSockets maps the inode of every listening unix socket to its path.
func listeningUnixSockets(t *testing.T) map[string]string {
	t.Helper()
	sockets := map[string]string{}
	for _, f := range procNetRows(t, "/proc/net/unix") {
		// Num RefCount Protocol Flags Type St Inode Path; flag 00010000 is __SO_ACCEPTCON.
		if len(f) > 7 && f[3] == "00010000" {
			sockets[f[6]] = f[7]
		}
	}
	return sockets
}

func procNetRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var rows [][]string
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		rows = append(rows, strings.Fields(s.Text()))
	}
	require.NoError(t, s.Err())
	return rows
}
