package test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pg-keeper/pg_keeper/test/cluster"
)

// row is one result row in PostgreSQL's text form, by column name; NULL is
// absent from the map.
type row map[string]string

// tryRows runs sql on n, connected with the conninfo settings extra
// ("user=plain"), and returns its rows in text form.
func tryRows(n *cluster.Node, extra, sql string) ([]row, error) {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.Conninfo(extra))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rs, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		r := row{}
		for i, v := range rs.RawValues() {
			if v != nil {
				r[rs.FieldDescriptions()[i].Name] = string(v)
			}
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// rows is tryRows as the superuser, failing the test on error.
func rows(t testing.TB, n *cluster.Node, sql string) []row {
	t.Helper()
	rs, err := tryRows(n, "user=postgres", sql)
	require.NoError(t, err, "%s: %s", n.Name, sql)
	return rs
}

func oneRow(t testing.TB, n *cluster.Node, sql string) row {
	t.Helper()
	rs := rows(t, n, sql)
	require.Len(t, rs, 1, "%s: %s", n.Name, sql)
	return rs[0]
}
