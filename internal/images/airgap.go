package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/packaged/helmjob"
	"github.com/k3snet/k3snet/servicelb"
)

// Programs are the built binaries the air-gap images carry, as host paths. Each must be
// statically linked: only the ServiceLB image carries shared libraries, for iptables.
type Programs struct {
	// Pause is ./pause, the pod sandbox's process.
	Pause string
	// CoreDNS is CoreDNS (hack/build-node.sh image-bin/coredns).
	CoreDNS string
	// Traefik is Traefik (hack/build-node.sh image-bin/traefik).
	Traefik string
	// KlipperLB is the ServiceLB forwarder, servicelb/forwarder/cmd/klipper-lb.
	KlipperLB string
	// TestServer is ./testserver, the end-to-end test tool.
	TestServer string
	// KlipperHelm is the helm job's program, packaged/helm/cmd/klipper-helm.
	KlipperHelm string
}

// Validate reports every program that is unset or not a regular file.
func (p Programs) Validate() error {
	return validatePrograms([]namedProgram{
		{"Pause", p.Pause}, {"CoreDNS", p.CoreDNS}, {"Traefik", p.Traefik},
		{"KlipperLB", p.KlipperLB}, {"TestServer", p.TestServer}, {"KlipperHelm", p.KlipperHelm},
	})
}

// namedProgram is a program's field name and its host path.
type namedProgram struct{ name, path string }

// validatePrograms reports every program that is unset or not a regular file.
func validatePrograms(progs []namedProgram) error {
	var errs []error
	for _, prog := range progs {
		if prog.path == "" {
			errs = append(errs, fmt.Errorf("program %s is not set", prog.name))
			continue
		}
		fi, err := os.Stat(prog.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("program %s: %w", prog.name, err))
			continue
		}
		if !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("program %s: %s is not a regular file", prog.name, prog.path))
		}
	}
	return errors.Join(errs...)
}

// sbinPath is the PATH of the images that run iptables, where their programs look it up.
const sbinPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// The iptables multi-call binaries every iptables command of the ServiceLB image runs.
const (
	xtablesNFT    = "xtables-nft-multi"
	xtablesLegacy = "xtables-legacy-multi"
)

// errUnbuiltImage marks a packaged manifest image that AirgapImages has no program for.
var errUnbuiltImage = errors.New("packaged image not built into the air-gap images")

// hostPaths are where AirgapImages finds the files it copies from this machine.
type hostPaths struct {
	// sbinDir holds the iptables commands and multi-call binaries.
	sbinDir string
	// xtablesDir holds iptables' extensions, which the binaries dlopen from this path.
	xtablesDir string
	// caFile is the CA bundle; it goes into CoreDNS and Traefik (forwarders, ACME) if present.
	caFile string
	// protocols is /etc/protocols, which iptables reads for protocol names, if present.
	protocols string
	// ipset is the ipset command, which k3snet's NetworkPolicy controller runs.
	ipset string
}

// debianHost is where Debian 12's iptables 1.8.9 and ca-certificates install.
func debianHost() hostPaths {
	return hostPaths{
		sbinDir:    "/usr/sbin",
		xtablesDir: "/usr/lib/" + multiarchTriple() + "/xtables",
		caFile:     "/etc/ssl/certs/ca-certificates.crt",
		protocols:  "/etc/protocols",
		ipset:      "/usr/sbin/ipset",
	}
}

// AirgapImages returns the images a k3snet cluster runs, built from p and this machine's
// files, under the names the code that runs them uses:
//
//   - PauseImage: p.Pause as /pause, the sandbox image the agent's containerd config names;
//   - the CoreDNS image of the packaged coredns manifest: /coredns, the CA bundle, and
//     /etc/passwd and /etc/group with root, nobody (65534) and nonroot (65532);
//   - the Traefik image of the packaged traefik chart: /traefik, the same files, and /tmp;
//   - servicelb.DefaultImage: the forwarder as /klipper-lb, and Debian's iptables (nft and
//     legacy, plain names as on this machine) with its extensions and shared libraries;
//   - TestServerImage: p.TestServer as /testserver, serving by default;
//   - helmjob.DefaultJobImage: p.KlipperHelm as /klipper-helm, run as nonroot (65532) with
//     its home at /home/klipper-helm, the CA bundle for repositories, as K3s's helm jobs run
//     it (a non-root pod with a read-only root).
//
// A packaged manifest image it cannot build is an error, so a new packaged component
// cannot silently miss from the tarball.
//
// render renders the packaged charts to find their images (helm.RenderInline): passed in,
// so that the programs that only name an image (PauseImage) link no Helm.
func AirgapImages(p Programs, render packaged.RenderChart) ([]Image, error) {
	return airgapImages(p, render, debianHost())
}

// airgapImages is AirgapImages with the host's file locations passed in.
func airgapImages(p Programs, render packaged.RenderChart, host hostPaths) ([]Image, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pkgImages, err := packaged.Images(render)
	if err != nil {
		return nil, fmt.Errorf("listing the packaged images: %w", err)
	}
	var coreDNS, traefik string
	var errs []error
	for _, img := range pkgImages {
		switch {
		case img.Manifest == "coredns" && img.Container == "coredns":
			coreDNS = img.Ref
		case img.Manifest == "traefik" && img.Container == "traefik":
			traefik = img.Ref
		default:
			errs = append(errs, fmt.Errorf("%w: manifest %s, container %s, image %s", errUnbuiltImage, img.Manifest, img.Container, img.Ref))
		}
	}
	if coreDNS == "" || traefik == "" {
		errs = append(errs, fmt.Errorf("the packaged manifests name no CoreDNS or no Traefik image: %v", pkgImages))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	lb, err := lbImage(p.KlipperLB, host)
	if err != nil {
		return nil, err
	}
	etc := append(accountFiles(), caBundle(host)...)
	imgs := []Image{
		pauseImage(p.Pause),
		{
			Name:       coreDNS,
			Entrypoint: []string{"/coredns"},
			Files:      append([]File{program("/coredns", p.CoreDNS)}, etc...),
		},
		{
			Name:       traefik,
			Entrypoint: []string{"/traefik"},
			Files:      append([]File{program("/traefik", p.Traefik), tmpDir()}, etc...),
		},
		lb,
		testServerImage(p.TestServer),
		helmJobImage(p.KlipperHelm, host),
	}
	for i := range imgs {
		if imgs[i].Name, err = NormalizeName(imgs[i].Name); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// pauseImage is the sandbox image: the pause program alone.
func pauseImage(pause string) Image {
	return Image{Name: PauseImage, Entrypoint: []string{"/pause"}, Files: []File{program("/pause", pause)}}
}

// testServerImage is the test server's image; it serves unless given a client command.
func testServerImage(testServer string) Image {
	return Image{
		Name:       TestServerImage,
		Entrypoint: []string{"/testserver"},
		Cmd:        []string{"serve"},
		Files:      append([]File{program("/testserver", testServer), tmpDir()}, accountFiles()...),
	}
}

// helmJobImage is the image of K3s's helm jobs (package helmjob writes them): the helm job
// program, accounts, the CA bundle, and a numeric non-root user, which the jobs' pods
// (runAsNonRoot) require of their image.
func helmJobImage(klipperHelm string, host hostPaths) Image {
	return Image{
		Name:       helmjob.DefaultJobImage,
		Entrypoint: []string{"/klipper-helm"},
		Env:        []string{"HOME=" + helmJobHome},
		User:       "65532:65532",
		Files: slices.Concat(
			[]File{program("/klipper-helm", klipperHelm), tmpDir(), {Path: helmJobHome, Mode: fs.ModeDir | 0o755}},
			accountFiles(), caBundle(host)),
	}
}

// helmJobHome is klipper-helm's home, where the jobs mount Helm's state and Docker's config.
const helmJobHome = "/home/klipper-helm"

// lbImage is the ServiceLB image: the forwarder, which the DaemonSet runs with no command,
// and the host's iptables for it to run.
func lbImage(klipperLB string, host hostPaths) (Image, error) {
	return firewallImage(servicelb.DefaultImage, "/klipper-lb", klipperLB, host)
}

// firewallImage is the image name of a program that runs iptables: the host file src as the
// entrypoint, the host's iptables on the image's PATH, /etc/protocols for its protocol names,
// /tmp, and /run, which holds iptables-legacy's lock file.
func firewallImage(name, entrypoint, src string, host hostPaths) (Image, error) {
	iptables, err := iptablesFiles(host)
	if err != nil {
		return Image{}, err
	}
	return Image{
		Name:       name,
		Entrypoint: []string{entrypoint},
		Env:        []string{sbinPath},
		Files: slices.Concat(
			[]File{program(entrypoint, src), tmpDir(), {Path: "/run", Mode: fs.ModeDir | 0o755}},
			optionalFile(host.protocols, "/etc/protocols"),
			iptables,
		),
	}, nil
}

// program is an executable at p in the image with the content of the host file src.
func program(p, src string) File { return File{Path: p, Mode: 0o755, Source: src} }

// tmpDir is /tmp, world-writable and sticky, for programs that write temporary files.
func tmpDir() File { return File{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777} }

// optionalFile is the host file src at p in the image, or nothing when src is absent.
func optionalFile(src, p string) []File {
	if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return []File{{Path: p, Mode: 0o644, Source: src}}
}

// caBundle is the host's CA bundle at Debian's path, for programs that fetch over TLS, or
// nothing when the host has none.
func caBundle(host hostPaths) []File {
	return optionalFile(host.caFile, "/etc/ssl/certs/ca-certificates.crt")
}

// accountFiles are /etc/passwd and /etc/group with the users an image may run as: root,
// nobody (65534) and nonroot (65532), which charts that run as non-root commonly pick.
func accountFiles() []File {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n"
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
	}
}

// iptablesCommands are the iptables commands the forwarder may run (plain, -nft and
// -legacy, with -save and -restore, for both families): the names it looks up on PATH, and
// the ones an operator uses in `kubectl exec`.
func iptablesCommands() []string {
	var out []string
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, backend := range []string{"", "-nft", "-legacy"} {
			for _, op := range []string{"", "-save", "-restore"} {
				out = append(out, fam+backend+op)
			}
		}
	}
	return out
}

// iptablesFiles returns the ServiceLB image's iptables: the two multi-call binaries in
// /usr/sbin, every command of iptablesCommands as a symlink to the binary it runs on this
// machine (through Debian's alternatives, so the plain names keep the host's backend), the
// extensions, and the shared libraries of all of them.
func iptablesFiles(host hostPaths) ([]File, error) {
	sbin, err := filepath.EvalSymlinks(host.sbinDir)
	if err != nil {
		return nil, fmt.Errorf("finding iptables: %w", err)
	}
	var out []File
	var objects []string
	for _, multi := range []string{xtablesNFT, xtablesLegacy} {
		src := filepath.Join(sbin, multi)
		out = append(out, File{Path: path.Join("/usr/sbin", multi), Mode: 0o755, Source: src})
		objects = append(objects, src)
	}
	var errs []error
	for _, name := range iptablesCommands() {
		target, err := filepath.EvalSymlinks(filepath.Join(host.sbinDir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("finding iptables command %s: %w", name, err))
			continue
		}
		base := filepath.Base(target)
		if filepath.Dir(target) != sbin || (base != xtablesNFT && base != xtablesLegacy) {
			errs = append(errs, fmt.Errorf("iptables command %s runs %s, not %s or %s in %s", name, target, xtablesNFT, xtablesLegacy, sbin))
			continue
		}
		out = append(out, File{Path: path.Join("/usr/sbin", name), Link: base})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w (is Debian's iptables package installed? hack/setup.sh installs it)", err)
	}
	exts, err := filepath.Glob(filepath.Join(host.xtablesDir, "*.so"))
	if err != nil {
		return nil, fmt.Errorf("listing iptables extensions: %w", err)
	}
	if len(exts) == 0 {
		return nil, fmt.Errorf("no iptables extensions in %s", host.xtablesDir)
	}
	for _, ext := range exts {
		// libxtables looks for extensions in the directory Debian built it with.
		out = append(out, File{Path: path.Join("/usr/lib", multiarchTriple(), "xtables", filepath.Base(ext)), Mode: 0o644, Source: ext})
		objects = append(objects, ext)
	}
	for _, obj := range objects {
		libs, err := SharedLibraries(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, libs...)
	}
	return dedupeFiles(out), nil
}

// dedupeFiles keeps the first File of each path, sorted by path: the shared libraries of
// several binaries overlap.
func dedupeFiles(files []File) []File {
	seen := make(map[string]bool, len(files))
	out := make([]File, 0, len(files))
	for _, f := range files {
		if !seen[f.Path] {
			seen[f.Path] = true
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}
