package conninfo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReceiverNameOf(t *testing.T) {
	for _, tc := range []struct {
		name, conninfo, cluster, want string
	}{
		{"kv plain", "host=a port=5432 application_name=node2 user=rep", "", "node2"},
		{"kv first item", "application_name=node2 host=a", "", "node2"},
		{"kv spaces around =", "host=a application_name = node2", "", "node2"},
		{"kv quoted", "host=a application_name='node 2' user=rep", "", "node 2"},
		{"kv quoted with escapes", `host=a application_name='my \'node\' \\2' password='x y'`, "", `my 'node' \2`},
		{"kv unquoted with an escaped space", `host=a application_name=node\ 2 user=rep`, "", "node 2"},
		{"kv quoted, empty", "host=a application_name='' user=rep", "", ""},
		{"kv wins over cluster_name", "host=a application_name=node2", "pair", "node2"},
		{"URI", "postgresql://rep@a:5432/postgres?application_name=node2", "", "node2"},
		{"URI, postgres scheme", "postgres://a/postgres?sslmode=disable&application_name=node2&connect_timeout=5", "", "node2"},
		{"URI with percent-encoding", "postgresql://a/db?application_name=node%202%2Fa%26b", "", "node 2/a&b"},
		{"URI, bad percent-encoding is kept", "postgresql://a/db?application_name=node%2", "", "node%2"},
		{"URI wins over cluster_name", "postgresql://a/db?application_name=node2", "pair", "node2"},
		{"fallback to cluster_name", "host=a user=rep", "pair", "pair"},
		{"fallback to walreceiver", "host=a user=rep", "", "walreceiver"},
		{"empty conninfo", "", "", "walreceiver"},
		{"fallback_application_name must not match", "host=a fallback_application_name=other", "pair", "pair"},
		{"fallback_application_name alone", "fallback_application_name=other", "", "walreceiver"},
		{"fallback_application_name in a URI", "postgresql://a/db?fallback_application_name=other", "", "walreceiver"},
		{"a URI's path is no query", "postgresql://a/application_name=x", "", "walreceiver"},
		{"application_name inside another value is none", "host=a options='-capplication_name=x'", "pair", "pair"},
	} {
		require.Equal(t, tc.want, ReceiverNameOf(tc.conninfo, tc.cluster), tc.name)
	}
}

// libpq decodes only %XX in a URI: "+" stays "+" (url.QueryUnescape would
// turn it into a space).
func TestReceiverNameOfURIPlus(t *testing.T) {
	require.Equal(t, "a+b", ReceiverNameOf("postgresql://a/db?application_name=a+b", ""))
}

// libpq keeps the last of two application_name items.
func TestReceiverNameOfRepeatedKey(t *testing.T) {
	require.Equal(t, "second", ReceiverNameOf("application_name=first host=a application_name=second", ""))
}

func TestReceiverName(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name     string
		kv, uri  *string
		cluster  string
		expected string
	}{
		{"kv token", s("'node 2'"), nil, "pair", "node 2"},
		{"kv token over a URI token", s("a"), s("b"), "", "a"},
		{"URI token", nil, s("node%202"), "pair", "node 2"},
		{"URI token that does not decode", nil, s("%zz"), "", "%zz"},
		{"empty kv token", s("''"), nil, "pair", ""},
		{"cluster_name", nil, nil, "pair", "pair"},
		{"nothing", nil, nil, "", "walreceiver"},
	} {
		require.Equal(t, tc.expected, ReceiverName(tc.kv, tc.uri, tc.cluster), tc.name)
	}
}

func TestUnquoteConninfo(t *testing.T) {
	for in, want := range map[string]string{
		"node2":           "node2",
		"'node2'":         "node2",
		"'node 2'":        "node 2",
		`'it\'s'`:         "it's",
		`'a\\b'`:          `a\b`,
		`a\ b`:            "a b",
		`'\x'`:            "x",
		"''":              "",
		"'":               "'",
		`trailing\`:       `trailing\`,
		`'unbalanced`:     `'unbalanced`,
		`'日本\'語'`:         "日本'語",
		`'with = equals'`: "with = equals",
	} {
		require.Equal(t, want, unquoteConninfo(in), in)
	}
}

func TestWithAppName(t *testing.T) {
	for _, tc := range []struct{ conninfo, name, want string }{
		{"host=a port=5432 user=rep", "node1", "host=a port=5432 user=rep application_name='node1'"},
		{"host=a user=rep", `it's \ odd`, `host=a user=rep application_name='it\'s \\ odd'`},
		{"postgresql://rep@a:5432/postgres", "node1", "postgresql://rep@a:5432/postgres?application_name=node1"},
		{"postgres://rep@a/postgres?sslmode=require", "node1", "postgres://rep@a/postgres?sslmode=require&application_name=node1"},
		{"postgresql://a", "node 1/é", "postgresql://a?application_name=node%201%2F%C3%A9"},
	} {
		require.Equal(t, tc.want, WithAppName(tc.conninfo, tc.name), "%s / %s", tc.conninfo, tc.name)
	}
}
