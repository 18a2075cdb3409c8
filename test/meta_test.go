package test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// controlVersion is default_version in pg_keeper.control.
func controlVersion(t *testing.T) string {
	t.Helper()
	control, err := os.ReadFile("../pg_keeper.control")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^default_version\s*=\s*'([^']+)'`).FindSubmatch(control)
	require.NotNil(t, m, "no default_version in pg_keeper.control")
	return string(m[1])
}

// TestMetaJSONMatchesControl: PGXN's META.json names the extension's
// version as a semantic version (1.0 is 1.0.0) and its install script;
// both must follow pg_keeper.control. No server needed.
func TestMetaJSONMatchesControl(t *testing.T) {
	version := controlVersion(t)
	semver := version
	for strings.Count(semver, ".") < 2 {
		semver += ".0"
	}

	raw, err := os.ReadFile("../META.json")
	require.NoError(t, err)
	var meta struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		License  string `json:"license"`
		MetaSpec struct {
			Version string `json:"version"`
		} `json:"meta-spec"`
		Provides map[string]struct {
			File    string `json:"file"`
			Version string `json:"version"`
		} `json:"provides"`
		Prereqs struct {
			Runtime struct {
				Requires map[string]string `json:"requires"`
			} `json:"runtime"`
		} `json:"prereqs"`
	}
	require.NoError(t, json.Unmarshal(raw, &meta), "META.json")

	require.Equal(t, "pg_keeper", meta.Name)
	require.Equal(t, "1.0.0", meta.MetaSpec.Version)
	require.NotEmpty(t, meta.License)
	require.Equal(t, semver, meta.Version, "META.json version against default_version %s", version)
	ext, ok := meta.Provides["pg_keeper"]
	require.True(t, ok, "META.json provides no pg_keeper")
	require.Equal(t, semver, ext.Version, "provides.pg_keeper.version against default_version %s", version)
	require.Equal(t, "sql/pg_keeper--"+version+".sql", ext.File)
	_, err = os.Stat("../" + ext.File)
	require.NoError(t, err, "provides.pg_keeper.file")
	require.Regexp(t, `^\d+\.\d+\.\d+$`, meta.Prereqs.Runtime.Requires["PostgreSQL"])
}
