package test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// pg_upgrade cannot restore the extension's schema (a name starting with
// pg_ is reserved), so the README's procedure drops the extension, which
// holds no data, before the upgrade and creates it again after.
func TestPgUpgradeProcedure(t *testing.T) {
	requireInstalled(t)
	c := cluster.New(t, cluster.Options{NoStandby: true})
	n := c.Master
	n.Exec(t, "CREATE EXTENSION pg_keeper")
	n.Stop(t, "fast")

	// Without the procedure pg_upgrade stops, before it changed the old cluster.
	out, err := n.PgUpgrade()
	require.Error(t, err)
	require.Contains(t, out, `unacceptable schema name "pg_keeper"`)

	n.Start(t)
	n.Exec(t, "DROP EXTENSION pg_keeper")
	n.Stop(t, "fast")
	out, err = n.PgUpgrade()
	require.NoError(t, err, out)
	n.Start(t)
	n.Exec(t, "CREATE EXTENSION pg_keeper")
	require.Equal(t, "1", n.QueryString(t, "SELECT count(*) FROM pg_views WHERE schemaname = 'pg_keeper' AND viewname = 'status'"))
}
