// Package testenv keeps tests of connection strings from depending on the
// machine: it empties the PG* environment variables that libpq and pgx read.
package testenv

import (
	"path/filepath"
	"testing"
)

// CleanEnv empties every PG* variable pgx reads, for the test's duration.
func CleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
		"PGAPPNAME", "PGCONNECT_TIMEOUT", "PGSSLMODE", "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT",
		"PGSSLPASSWORD", "PGSSLSNI", "PGSSLNEGOTIATION", "PGTARGETSESSIONATTRS", "PGSERVICE",
		"PGSERVICEFILE", "PGOPTIONS", "PGTZ", "PGMINPROTOCOLVERSION", "PGMAXPROTOCOLVERSION"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "no-such-pgpass"))
}
