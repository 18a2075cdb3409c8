package test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDebPackage checks the .deb that make deb built (PG_KEEPER_DEB names
// it) against the server of pg_config, and that this server runs the
// package's libraries: CI installs the package before the tests, so the
// suite ran against it.
func TestDebPackage(t *testing.T) {
	deb := os.Getenv("PG_KEEPER_DEB")
	if deb == "" {
		t.Skip("PG_KEEPER_DEB is not set: build a package with make deb, install it, and name it there")
	}
	_, err := exec.LookPath("dpkg-deb")
	require.NoError(t, err, "PG_KEEPER_DEB is set but dpkg-deb is missing")

	pgc := func(arg string) string {
		out, err := exec.Command(pgConfig(), arg).Output()
		require.NoError(t, err, "pg_config %s", arg)
		return strings.TrimSpace(string(out))
	}
	m := regexp.MustCompile(`^PostgreSQL (\d+)`).FindStringSubmatch(pgc("--version"))
	require.NotNil(t, m, "pg_config --version")
	major := m[1]
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		require.NoError(t, err, "dpkg-deb --field %s %s", deb, name)
		return strings.TrimSpace(string(out))
	}

	pkg := field("Package")
	require.Equal(t, "postgresql-"+major+"-pg-keeper", pkg)
	var depends []string
	for _, d := range strings.Split(field("Depends"), ",") {
		depends = append(depends, strings.Fields(d)[0])
	}
	require.Contains(t, depends, "postgresql-"+major, "Depends")

	out, err := exec.Command("dpkg-query", "--show", "--showformat", "${Status} ${Version}", pkg).Output()
	require.NoError(t, err, "dpkg-query: %s is not installed", pkg)
	require.Equal(t, "install ok installed "+field("Version"), string(out))

	pkglibdir := pgc("--pkglibdir")
	allowed := []string{pkglibdir, pgc("--sharedir") + "/extension", pgc("--docdir") + "/extension"}
	under := func(p string) bool {
		for _, a := range allowed {
			if strings.HasPrefix(p, a+"/") {
				return true
			}
		}
		return false
	}
	tarball, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	require.NoError(t, err)
	tr := tar.NewReader(bytes.NewReader(tarball))
	libs := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		p := path.Clean("/" + h.Name)
		require.Equal(t, 0, h.Uid, "%s: owner", p)
		if h.Typeflag == tar.TypeDir {
			// an allowed directory, one below, or one of their parents
			ok := p == "/" || under(p+"/")
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(a, p+"/")
			}
			require.True(t, ok, "%s: a directory outside %v", p, allowed)
			continue
		}
		require.Equal(t, byte(tar.TypeReg), h.Typeflag, "%s: not a plain file", p)
		require.True(t, under(p), "%s: outside %v", p, allowed)
		mode := int64(0o644)
		if strings.HasSuffix(p, ".so") {
			mode = 0o755
		}
		require.Equal(t, mode, h.Mode&0o7777, "%s: mode", p)

		// The installed file is this one.
		packaged, err := io.ReadAll(tr)
		require.NoError(t, err)
		installed, err := os.ReadFile(p)
		require.NoError(t, err, "the package's %s is not installed", p)
		require.True(t, bytes.Equal(packaged, installed), "%s differs from the package's", p)
		if filepath.Dir(p) == pkglibdir {
			libs[filepath.Base(p)] = true
		}
	}
	require.True(t, libs["pg_keeper.so"] && libs["pg_keeper_go.so"], "the package lacks a library: %v", libs)
}
