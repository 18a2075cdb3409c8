// Package conninfo turns libpq connection strings into pgx configurations
// for the keeper's short sessions (UTF8, ISO dates, pg_catalog whatever the
// server says), hides passwords in anything logged, orders TLS attempts, and
// opens and closes sessions to this server.
package conninfo

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ApplicationName marks pg_keeper's sessions in the partner's pg_stat_activity.
const ApplicationName = "pg_keeper"

// sessionParams pin what the keeper's sessions depend on (see Config).
var sessionParams = map[string]string{
	"client_encoding":               "UTF8",
	"DateStyle":                     "ISO, MDY",
	"IntervalStyle":                 "postgres",
	"search_path":                   "pg_catalog",
	"default_transaction_read_only": "off",
	"statement_timeout":             "0",
	"lock_timeout":                  "0",
}

// WithPassfile makes ~/.pgpass of the server's OS user the default password
// file, as it is for libpq. pgx would look for it through $HOME, and the
// worker has no environment. A passfile in conninfo still wins: in the
// key=value form the last setting counts. URIs are left as they are.
func WithPassfile(conninfo, home string) string {
	if home == "" || strings.Contains(conninfo, "://") {
		return conninfo
	}
	return fmt.Sprintf("passfile='%s' %s", Quote(filepath.Join(home, ".pgpass")), conninfo)
}

func Quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func Config(conninfo string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	// The keeper's queries must mean the same on every server, whatever its
	// encoding, a role's defaults or postgresql.conf say: pgx's simple
	// protocol refuses to run unless client_encoding is UTF8 (a SQL_ASCII
	// cluster defaults to SQL_ASCII), its text decoding needs ISO dates,
	// and functions are looked up in pg_catalog only. Startup-packet
	// settings win over role and database defaults.
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	// One round trip per statement, nothing cached between short sessions.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	return cfg, nil
}
