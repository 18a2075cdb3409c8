// Package cluster builds a real two-node PostgreSQL streaming-replication
// cluster on 127.0.0.1 for pg_keeper's end-to-end tests: initdb,
// pg_basebackup and pg_ctl, run as the postgres OS user when tests run as
// root. Everything lives in one temp dir that t.Cleanup removes, after
// killing every process of the cluster. With Options.Witness a third
// server, the witness, runs beside the pair.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options chooses how New builds the cluster.
type Options struct {
	Preload   string            // shared_preload_libraries; "" = none
	Settings  map[string]string // extra postgresql.conf lines for both nodes, values verbatim
	Sync      bool              // both nodes get synchronous_standby_names = 'standby'
	NoStandby bool              // only create the master
	// Keeper preloads pg_keeper on both nodes and points each node's
	// pg_keeper.partner_conninfo at the other one.
	Keeper bool
	// KeeperAddr sets each node's pg_keeper.my_conninfo to its own TCP
	// address, as an operator does when the keeper must tell a pooler where
	// the primary is.
	KeeperAddr bool
	// Netns runs each node in a network namespace of its own, joined by a
	// veth pair, so that tests can cut the network between them (root only).
	Netns bool
	// Witness adds a third host, Cluster.Witness: a plain PostgreSQL
	// server (no pg_keeper, no replication) in a namespace of its own, with
	// a role and database "witness" that node1 and node2 reach over TCP
	// with a password (Cluster.WitnessConninfo). The three hosts are then
	// joined through a bridge in a fourth namespace, so that a test can cut
	// any one path (Cluster.Cut). Needs Netns, and a standby.
	Witness bool
	// NoChecksums makes data directories without data checksums, which
	// initdb enables by default from PostgreSQL 18 on.
	NoChecksums bool
	// Encoding and Locale are initdb's -E and --locale ("": UTF8 and C).
	Encoding, Locale string
	// Names are the application_names node1 and node2 stream with as
	// standbys ("": both "standby"). With them, Sync names each node's
	// partner, as conf/ does, rather than one shared name.
	Names [2]string
	// SyncNames builds a node's synchronous_standby_names from its
	// partner's name, as an identifier quoted as SQL needs it (nil: that
	// identifier alone).
	SyncNames func(partner string) string
}

// Cluster is a master and (unless Options.NoStandby) a streaming standby.
// After a failover the roles change but Master and Standby keep pointing at
// the nodes as created ("node1", "node2").
type Cluster struct {
	Master, Standby *Node
	Dir             string // temp base dir holding data dirs, logs and sockets
	// Witness is the third server of Options.Witness (nil without). It is
	// not one of Nodes() nor anyone's Other().
	Witness *Node

	mu          sync.Mutex
	nodes       []*Node
	postmasters map[int]bool // every postmaster pid we started, for cleanup
	netns       []string     // namespaces made for Options.Netns
	opts        Options
}

// New builds the cluster (see the package doc) and registers its cleanup.
// The standby is created with pg_basebackup -R from the running master and
// New returns once the master shows it as streaming.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	// Short path under /tmp: unix socket paths are limited to ~107 bytes.
	dir, err := os.MkdirTemp("/tmp", "pgk-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, postmasters: map[int]bool{}, opts: opts}
	// Register cleanup before anything can start, so a failure half-way
	// through New leaves nothing behind.
	t.Cleanup(func() { c.cleanup(t) })
	if opts.Witness && (!opts.Netns || opts.NoStandby) {
		t.Fatal("cluster: Options.Witness needs Options.Netns and a standby (not NoStandby)")
	}
	if err := chownPG(dir); err != nil {
		t.Fatal(err)
	}

	m, err := c.addNode("node1")
	if err != nil {
		t.Fatal(err)
	}
	c.Master = m
	if opts.Names[0] != "" {
		m.AppName = opts.Names[0]
	}
	var s *Node
	if !opts.NoStandby {
		// Both ports must be known before the master starts: its keeper
		// needs the standby's address from the first moment.
		if s, err = c.addNode("node2"); err != nil {
			t.Fatal(err)
		}
		c.Standby = s
		if opts.Names[1] != "" {
			s.AppName = opts.Names[1]
		}
		switch {
		case opts.Witness:
			w, err := newNode(c, "witness")
			if err != nil {
				t.Fatalf("witness: %v", err)
			}
			w.witness = true
			c.Witness = w
			if err := c.setupNetnsHub(m, s, w); err != nil {
				t.Fatal(err)
			}
		case opts.Netns:
			if err := c.setupNetns(m, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if opts.Keeper {
		opts.Preload = "pg_keeper"
		if s != nil {
			// As conf/ has it: how the master would stream from the standby,
			// used by a switchover and a rejoin (a primary ignores it).
			m.SetConf("primary_conninfo", ConfString(fmt.Sprintf("host=%s port=%d user=postgres application_name='%s'",
				s.ReplAddr, s.Port, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(m.AppName))))
			m.SetConf("pg_keeper.partner_conninfo", "'"+s.KeeperConninfo()+"'")
			s.SetConf("pg_keeper.partner_conninfo", "'"+m.KeeperConninfo()+"'")
		}
		if opts.KeeperAddr {
			m.SetConf("pg_keeper.my_conninfo", "'"+m.KeeperConninfo()+"'")
			if s != nil {
				s.SetConf("pg_keeper.my_conninfo", "'"+s.KeeperConninfo()+"'")
			}
		}
	}
	if err := c.initMaster(m, opts); err != nil {
		t.Fatal(err)
	}
	if opts.Sync {
		// On both nodes, as conf/ has it: a standby that is promoted keeps
		// it, so its commits wait for the old master until the keeper
		// switches to asynchronous replication.
		syncNames := opts.SyncNames
		if syncNames == nil {
			syncNames = func(partner string) string { return partner }
		}
		if s != nil {
			m.SetConf("synchronous_standby_names", ConfString(syncNames(QuoteIdent(s.AppName))))
			s.SetConf("synchronous_standby_names", ConfString(syncNames(QuoteIdent(m.AppName))))
		} else {
			m.SetConf("synchronous_standby_names", ConfString(syncNames(standbyAppName)))
		}
	}
	if c.Witness != nil {
		// Up before the keepers, which may need it from their first moment.
		c.startWitness(t)
	}
	m.Start(t)
	if opts.NoStandby {
		return c
	}

	if err := s.basebackup(m); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	m.WaitStreaming(t, 60*time.Second)
	return c
}

// Nodes returns the nodes of the pair in creation order (not the witness).
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// allNodes is Nodes and the witness, if any.
func (c *Cluster) allNodes() []*Node {
	nodes := c.Nodes()
	if c.Witness != nil {
		nodes = append(nodes, c.Witness)
	}
	return nodes
}

// Other returns the node of the pair that is not n (nil if none).
func (c *Cluster) Other(n *Node) *Node {
	for _, o := range c.Nodes() {
		if o != n {
			return o
		}
	}
	return nil
}

func (c *Cluster) addNode(name string) (*Node, error) {
	n, err := newNode(c, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n, nil
}

func (c *Cluster) addPostmaster(pid int) {
	c.mu.Lock()
	c.postmasters[pid] = true
	c.mu.Unlock()
}

// initMaster runs initdb for m and writes the shared configuration, which
// the standby later inherits through pg_basebackup.
// initdbArgs are the options every data directory is made with.
var initdbArgs = []string{"-U", "postgres", "--no-sync", "-A", "trust", "-E", "UTF8", "--locale=C"}

func (o Options) initdbArgs() []string {
	args := append([]string(nil), initdbArgs...)
	if o.Encoding != "" {
		args[6] = o.Encoding
	}
	if o.Locale != "" {
		args[7] = "--locale=" + o.Locale
	}
	if m, err := Major(); o.NoChecksums && err == nil && m >= 18 {
		args = append(args, "--no-data-checksums")
	}
	return args
}

// QuoteIdent quotes a name for synchronous_standby_names when it is not a
// plain lower-case identifier.
func QuoteIdent(name string) string {
	plain := name != ""
	for i, r := range name {
		plain = plain && (r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9')
	}
	if plain {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// ConfString is s as a postgresql.conf string value.
func ConfString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (c *Cluster) initMaster(m *Node, opts Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := runPG(ctx, c.Dir, "initdb", append([]string{"-D", m.DataDir}, opts.initdbArgs()...)...); err != nil {
		return err
	}
	conf := sharedConf(opts)
	f, err := os.OpenFile(filepath.Join(m.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := m.writeHBA(""); err != nil {
		return err
	}
	return m.writeConf()
}

// sharedConf is appended to the master's postgresql.conf. Per-node lines
// (port, sockets) go to each node's include file, which comes last and so
// wins over anything here.
func sharedConf(opts Options) string {
	lines := [][2]string{
		{"listen_addresses", "'127.0.0.1'"},
		{"wal_level", "replica"},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"hot_standby", "on"},
		{"wal_keep_size", "'256MB'"},
		{"fsync", "off"}, // test speed; crash safety of the OS is not tested
		{"synchronous_commit", "on"},
		{"log_line_prefix", "'%m [%p] %b '"},
		{"logging_collector", "off"},
		{"shared_buffers", "'32MB'"},
		{"max_connections", "50"},
		{"wal_receiver_status_interval", "'1s'"},
		{"wal_sender_timeout", "'10s'"},
		{"wal_receiver_timeout", "'10s'"},
		// A standby retries a lost primary every 5 s by default, which
		// would dominate every test that restarts a primary.
		{"wal_retrieve_retry_interval", "'1s'"},
	}
	if opts.Preload != "" {
		lines = append(lines, [2]string{"shared_preload_libraries", "'" + opts.Preload + "'"})
	}
	keys := make([]string, 0, len(opts.Settings))
	for k := range opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, [2]string{k, opts.Settings[k]})
	}
	s := "\n# ---- written by test/cluster ----\n"
	for _, l := range lines {
		s += l[0] + " = " + l[1] + "\n"
	}
	s += "include_if_exists = '" + confInclude + "'\n"
	return s
}

// cleanup stops every node, kills whatever of ours survives, and removes
// the temp dir. On failure it first logs each node's log tail.
func (c *Cluster) cleanup(t testing.TB) {
	nodes := c.allNodes()
	if t.Failed() {
		for _, n := range nodes {
			t.Logf("--- %s (port %d) log tail ---\n%s", n.Name, n.Port, n.LogTail(60))
			if !n.witness {
				t.Logf("--- %s (port %d) pg_keeper lines ---\n%s", n.Name, n.Port, KeeperLines(n.Log(), 40))
			}
		}
	}
	for _, n := range nodes {
		if pid := n.PostmasterPID(); pid != 0 {
			c.addPostmaster(pid)
			if err := n.StopWithTimeout("immediate", 15*time.Second); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	}
	c.mu.Lock()
	pms := make(map[int]bool, len(c.postmasters))
	for pid := range c.postmasters {
		pms[pid] = true
	}
	c.mu.Unlock()
	if left := killLeftovers(c.Dir, pms); len(left) > 0 {
		t.Errorf("cleanup: processes %v survived SIGKILL", left)
	}
	c.removeNetns()
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}
