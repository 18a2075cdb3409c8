package keeper

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"
)

// Type OIDs of the columns the fake server returns.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt4        = 23
	oidText        = 25
	oidTimestamptz = 1184
)

// fakeColumn is one column of the single row a fake server answers with,
// in PostgreSQL's text format.
type fakeColumn struct {
	oid  uint32
	text string
}

// fakePG is a PostgreSQL server on 127.0.0.1 that speaks just enough of the
// protocol for Probe, ReplicationAlive and StandbyCaughtUp: it accepts any
// user without a password (or fails the startup with startupErr), and
// answers every simple query with one row of columns (or with queryErr; a
// column whose text is fakeNull is NULL).
// A query whose text is a key of answers or failures gets that row or
// error instead.
type fakePG struct {
	port int
	l    net.Listener

	mu         sync.Mutex
	startupErr *pgproto3.ErrorResponse
	queryErr   *pgproto3.ErrorResponse
	columns    []fakeColumn
	answers    map[string][]fakeColumn
	failures   map[string]*pgproto3.ErrorResponse
	queries    []string
	conns      []net.Conn
	closed     bool
}

func startFakePG(t *testing.T, columns ...fakeColumn) *fakePG {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &fakePG{port: l.Addr().(*net.TCPAddr).Port, l: l, columns: columns}
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

func (s *fakePG) set(f func(s *fakePG)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// received is every query text the server was sent, in order.
func (s *fakePG) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// stop closes the listener and every connection: the port then refuses.
func (s *fakePG) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = s.l.Close()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *fakePG) accept() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *fakePG) serve(c net.Conn) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			if _, err := c.Write([]byte("N")); err != nil {
				return
			}
			continue
		}
		if _, ok := msg.(*pgproto3.StartupMessage); !ok {
			return
		}
		break
	}
	s.mu.Lock()
	startupErr := s.startupErr
	s.mu.Unlock()
	if startupErr != nil {
		be.Send(startupErr)
		_ = be.Flush()
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.20"})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	be.Send(&pgproto3.ParameterStatus{Name: "TimeZone", Value: "UTC"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			s.mu.Lock()
			s.queries = append(s.queries, m.String)
			queryErr, columns := s.queryErr, append([]fakeColumn(nil), s.columns...)
			if cols, ok := s.answers[m.String]; ok {
				columns = append([]fakeColumn(nil), cols...)
			}
			if e, ok := s.failures[m.String]; ok {
				queryErr = e
			}
			s.mu.Unlock()
			if queryErr != nil {
				be.Send(queryErr)
			} else {
				var desc pgproto3.RowDescription
				var row pgproto3.DataRow
				for i, col := range columns {
					desc.Fields = append(desc.Fields, pgproto3.FieldDescription{
						Name: []byte{'c', byte('0' + i)}, DataTypeOID: col.oid, DataTypeSize: -1, TypeModifier: -1})
					if col.text == fakeNull {
						row.Values = append(row.Values, nil)
					} else {
						row.Values = append(row.Values, []byte(col.text))
					}
				}
				be.Send(&desc)
				be.Send(&row)
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			}
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
		case *pgproto3.Terminate:
			return
		default:
			return
		}
	}
}

// fakeNull as a fakeColumn's text is SQL NULL.
const fakeNull = "\x00NULL"

// factsRow is the fake answer to factsSQL: a partner whose
// synchronous_standby_names is set (sync) or empty, whose only walsender is
// the one named in the query, synchronous when sync is set; lsn and the
// timeline (an int4, 0 in recovery) as given; a standby partner sends no
// primary_conninfo token and no cluster_name, so it streams as
// "walreceiver".
func factsRow(inRecovery bool, sysid, startTime string, sync bool, lsn, timeline string) []fakeColumn {
	f := fakeFacts{InRecovery: inRecovery, SysID: sysid, StartTime: startTime, LSN: lsn, Timeline: timeline,
		KV: fakeNull, URI: fakeNull}
	if sync {
		f.Names = "walreceiver"
		f.W = walsenderCounts{Mine: 1, MineSync: 1}
	}
	return f.columns()
}

// fakeFacts is every column of factsSQL, for fakeFacts.columns.
type fakeFacts struct {
	InRecovery    bool
	SysID         string
	StartTime     string
	Names         string // synchronous_standby_names
	W             walsenderCounts
	LSN, Timeline string
	KV, URI       string // the application_name tokens of primary_conninfo; fakeNull: none
	ClusterName   string
}

// columns is the row in factsSQL's order: fifteen columns.
func (f fakeFacts) columns() []fakeColumn {
	b := "f"
	if f.InRecovery {
		b = "t"
	}
	n := func(i int) fakeColumn { return fakeColumn{oidInt8, strconv.Itoa(i)} }
	return []fakeColumn{{oidBool, b}, {oidInt8, f.SysID}, {oidTimestamptz, f.StartTime}, {oidText, f.Names},
		n(f.W.Mine), n(f.W.MineSync), n(f.W.MineQuorum), n(f.W.OthersPotential), n(f.W.OthersSync), n(f.W.Quorum),
		{oidInt8, f.LSN}, {oidInt4, f.Timeline}, {oidText, f.KV}, {oidText, f.URI}, {oidText, f.ClusterName}}
}

// simpleSQL is the text pgx's simple protocol sends for sql with string
// arguments: each placeholder $n becomes the quoted value, with a space on
// either side. (None of the keeper's queries has a "$n" in a literal.)
func simpleSQL(sql string, args ...string) string {
	for i := len(args); i >= 1; i-- {
		sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i), " '"+strings.ReplaceAll(args[i-1], "'", "''")+"' ")
	}
	return sql
}
