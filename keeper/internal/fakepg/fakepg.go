// Package fakepg is a PostgreSQL server on 127.0.0.1 for the keeper's unit
// tests: it speaks just enough of the protocol for the heartbeat and the
// checks of the local server, and answers each simple query with the row a
// test gave it.
package fakepg

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/internal/testenv"
	"github.com/stretchr/testify/require"
)

// Type OIDs of the columns the fake server returns.
const (
	OIDBool        = 16
	OIDInt8        = 20
	OIDInt4        = 23
	OIDText        = 25
	OIDTimestamptz = 1184
)

// Column is one column of the single row a fake server answers with,
// in PostgreSQL's text format.
type Column struct {
	OID  uint32
	Text string
}

// Server is a PostgreSQL server on 127.0.0.1 that speaks just enough of the
// protocol for Probe, ReplicationAlive and StandbyCaughtUp: it accepts any
// user without a password (or fails the startup with startupErr), and
// answers every simple query with one row of columns (or with queryErr; a
// column whose text is Null is NULL).
// A query whose text is a key of answers or failures gets that row or
// error instead; one that is a key of Commands completes with that command
// tag and no row, as a utility statement does (ALTER SYSTEM ...).
type Server struct {
	Port int
	l    net.Listener

	mu         sync.Mutex
	StartupErr *pgproto3.ErrorResponse
	QueryErr   *pgproto3.ErrorResponse
	Columns    []Column
	Answers    map[string][]Column
	Failures   map[string]*pgproto3.ErrorResponse
	Commands   map[string]string
	Queries    []string
	conns      []net.Conn
	closed     bool
}

func Start(t *testing.T, columns ...Column) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Server{Port: l.Addr().(*net.TCPAddr).Port, l: l, Columns: columns}
	go s.accept()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) Set(f func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// received is every query text the server was sent, in order.
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Queries...)
}

// stop closes the listener and every connection: the port then refuses.
func (s *Server) Stop() {
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

// DropConnections closes every connection the server has, as a restart or
// pg_terminate_backend() would, and goes on accepting new ones.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *Server) accept() {
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

func (s *Server) serve(c net.Conn) {
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
	startupErr := s.StartupErr
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
			s.Queries = append(s.Queries, m.String)
			queryErr, columns := s.QueryErr, append([]Column(nil), s.Columns...)
			if cols, ok := s.Answers[m.String]; ok {
				columns = append([]Column(nil), cols...)
			}
			tag, isCommand := s.Commands[m.String]
			if e, ok := s.Failures[m.String]; ok {
				queryErr = e
			}
			s.mu.Unlock()
			if queryErr != nil {
				be.Send(queryErr)
			} else if isCommand {
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
			} else {
				var desc pgproto3.RowDescription
				var row pgproto3.DataRow
				for i, col := range columns {
					desc.Fields = append(desc.Fields, pgproto3.FieldDescription{
						Name: []byte{'c', byte('0' + i)}, DataTypeOID: col.OID, DataTypeSize: -1, TypeModifier: -1})
					if col.Text == Null {
						row.Values = append(row.Values, nil)
					} else {
						row.Values = append(row.Values, []byte(col.Text))
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

// AcceptMaintenance makes the server take the statements with which the
// keeper sets pg_keeper.maintenance (action.SetMaintenance), on and off:
// ALTER SYSTEM completes as a utility statement, pg_reload_conf() answers
// true.
func (s *Server) AcceptMaintenance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Commands == nil {
		s.Commands = map[string]string{}
	}
	if s.Answers == nil {
		s.Answers = map[string][]Column{}
	}
	for _, v := range []string{"on", "off"} {
		s.Commands["ALTER SYSTEM SET pg_keeper.maintenance = "+v] = "ALTER SYSTEM"
	}
	s.Answers["SELECT pg_reload_conf()"] = []Column{Col(OIDBool, "t")}
}

// Null as a Column's text is SQL NULL.
const Null = "\x00NULL"

// FactsRow is the fake answer to factsSQL: a partner whose keeper writes no
// keepalive records (older than that), not in maintenance, whose
// synchronous_standby_names is set (sync) or empty, whose only walsender is
// the one named in the query, synchronous when sync is set; lsn and the
// timeline (an int4, 0 in recovery) as given; a standby partner sends no
// primary_conninfo token and no cluster_name, so it streams as
// "walreceiver".
func FactsRow(inRecovery bool, sysid, startTime string, sync bool, lsn, timeline string) []Column {
	f := Facts{InRecovery: inRecovery, SysID: sysid, StartTime: startTime, LSN: lsn, Timeline: timeline,
		KV: Null, URI: Null}
	if sync {
		f.Names = "walreceiver"
		f.W = Counts{Mine: 1, MineSync: 1}
	}
	return f.Columns()
}

// Facts is every column of factsSQL, for Facts.columns.
type Facts struct {
	InRecovery    bool
	SysID         string
	StartTime     string
	Names         string // synchronous_standby_names
	W             Counts
	LSN, Timeline string
	KV, URI       string // the application_name tokens of primary_conninfo; Null: none
	ClusterName   string
	Maintenance   bool   // pg_keeper.maintenance is on at the partner
	Keepalives    bool   // the partner's keeper writes keepalive records
	Stopping      bool   // the partner is shutting down (pg_keeper.server_state)
	ConfLoaded    string // pg_conf_load_time(); "": StartText
}

// Columns is the row in factsSQL's order: nineteen columns.
func (f Facts) Columns() []Column {
	if f.ConfLoaded == "" {
		f.ConfLoaded = StartText
	}
	n := func(i int) Column { return Col(OIDInt8, strconv.Itoa(i)) }
	return []Column{Col(OIDBool, Bool(f.InRecovery)), Col(OIDInt8, f.SysID), Col(OIDTimestamptz, f.StartTime), Col(OIDText, f.Names),
		n(f.W.Mine), n(f.W.MineSync), n(f.W.MineQuorum), n(f.W.OthersPotential), n(f.W.OthersSync), n(f.W.Quorum),
		{OIDInt8, f.LSN}, Col(OIDInt4, f.Timeline), Col(OIDText, f.KV), Col(OIDText, f.URI), Col(OIDText, f.ClusterName),
		Col(OIDBool, Bool(f.Maintenance)), Col(OIDBool, Bool(f.Keepalives)), Col(OIDBool, Bool(f.Stopping)),
		Col(OIDTimestamptz, f.ConfLoaded)}
}

// Bool is b in PostgreSQL's text format: "t" or "f".
func Bool(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

// InMaintenance is row, a factsSQL row (FactsRow, Facts.Columns), with
// the partner's pg_keeper.maintenance set to on.
func InMaintenance(row []Column) []Column {
	row = append([]Column(nil), row...)
	row[FactsMaintenance] = Col(OIDBool, "t")
	return row
}

// FactsMaintenance is the index of the maintenance column in a factsSQL row.
const FactsMaintenance = 15

// SimpleSQL is the text pgx's simple protocol sends for sql with string
// arguments: each placeholder $n becomes the quoted value, with a space on
// either side. (None of the keeper's queries has a "$n" in a literal.)
func SimpleSQL(sql string, args ...string) string {
	for i := len(args); i >= 1; i-- {
		sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i), " '"+strings.ReplaceAll(args[i-1], "'", "''")+"' ")
	}
	return sql
}

func Config(t *testing.T, port int) *pgx.ConnConfig {
	t.Helper()
	cfg, err := conninfo.Config(fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=y sslmode=disable", port))
	require.NoError(t, err)
	return cfg
}

// ClosedPort is a 127.0.0.1 port that nothing listens on.
func ClosedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// Col is a column of type oid with text (Null: NULL).
func Col(oid uint32, text string) Column { return Column{OID: oid, Text: text} }

// Counts are the walsender counts of the heartbeat query, as Facts gives
// them (see the keeper's syncstate.go).
type Counts struct {
	Mine, MineSync, MineQuorum, OthersPotential, OthersSync, Quorum int
}

// ConnCount is how many connections the server has accepted.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// cleanPGEnv keeps the test's environment out of what pgx parses.
func CleanEnv(t *testing.T) { testenv.CleanEnv(t) }

// silentServer accepts connections and never answers.
func Silent(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// StartText is the start time the fake servers report, as PostgreSQL writes it.
const StartText = "2024-05-01 11:00:00.123456+00"

// Start time as a time.Time.
var StartTime = time.Date(2024, 5, 1, 11, 0, 0, 123456000, time.UTC)
