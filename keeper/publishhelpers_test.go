package keeper

import

// jsonKeys is the sorted keys of the JSON object b.
(
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	ct "github.com/pg-keeper/pg_keeper/keeper/core/coretest"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/stretchr/testify/require"
)

func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func decodeRecord(t *testing.T, b []byte) publish.Record {
	t.Helper()
	var rec publish.Record
	require.NoError(t, json.Unmarshal(b, &rec), "%s", b)
	return rec
}

// eventLine is a saved event of node, as the runner writes it.
func eventLine(node, detail string) []byte {
	return publish.EncodeRecord(publish.Record{At: ct.T0, Node: node, Kind: publish.KindTransition, From: "standby:ready", To: "standby:connected",
		Trigger: "partner-up", Detail: detail})
}

func writeHistory(t *testing.T, dir string, lines ...[]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, publish.HistoryFile), append(bytes.Join(lines, []byte{'\n'}), '\n'), 0o600))
}

// readHistory is the lines of the events file; each must end with a newline.
func readHistory(t *testing.T, dir string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, publish.HistoryFile))
	require.NoError(t, err)
	if len(data) == 0 {
		return nil
	}
	require.Equal(t, byte('\n'), data[len(data)-1], "the file ends with a whole line")
	return bytes.Split(data[:len(data)-1], []byte{'\n'})
}
