package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The witness's role, password and database (Options.Witness).
const (
	WitnessUser     = "witness"
	WitnessPassword = "witness-secret"
	WitnessDB       = "witness"
)

// WitnessConninfo is the libpq conninfo with which a keeper on node1 or
// node2 reaches the witness: over TCP, as the witness role with its
// password, the only way its pg_hba.conf lets them in. It is "" in a
// cluster without a witness.
func (c *Cluster) WitnessConninfo() string {
	w := c.Witness
	if w == nil {
		return ""
	}
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s connect_timeout=2 sslmode=disable",
		w.Addr, w.Port, WitnessUser, WitnessPassword, WitnessDB)
}

// RebuildWitness replaces the witness with an empty one, as an operator
// who lost its disk would: it stops the witness (fast) if it runs, removes
// its data directory, makes it again as New does (initdb, configuration,
// pg_hba.conf with whatever SetHBA put first, the witness role and
// database) and starts it on the same port and address.
func (c *Cluster) RebuildWitness(t testing.TB) {
	t.Helper()
	w := c.Witness
	if w == nil {
		t.Fatal("cluster: RebuildWitness without Options.Witness")
	}
	if w.PostmasterPID() != 0 {
		w.Stop(t, "fast")
	}
	if err := os.RemoveAll(w.DataDir); err != nil {
		t.Fatalf("%s: wipe data dir: %v", w.Name, err)
	}
	c.startWitness(t)
}

// startWitness makes the witness's data directory, starts it and creates
// its role and database.
func (c *Cluster) startWitness(t testing.TB) {
	t.Helper()
	w := c.Witness
	if err := c.initWitness(w); err != nil {
		t.Fatal(err)
	}
	w.Start(t)
	w.Exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER PASSWORD '%s'", WitnessUser, WitnessPassword))
	// Not in one string with the above: CREATE DATABASE refuses to run in
	// the implicit transaction of a multi-statement query.
	w.Exec(t, fmt.Sprintf("CREATE DATABASE %s OWNER %s", WitnessDB, WitnessUser))
}

// initWitness runs initdb for w with the pair's initdb options and writes
// its configuration: no pg_keeper, no replication.
func (c *Cluster) initWitness(w *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := runPG(ctx, c.Dir, "initdb", append([]string{"-D", w.DataDir}, c.opts.initdbArgs()...)...); err != nil {
		return fmt.Errorf("%s: %w", w.Name, err)
	}
	f, err := os.OpenFile(filepath.Join(w.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(witnessConf); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := w.writeHBA(w.hba); err != nil {
		return err
	}
	return w.writeConf()
}

// witnessConf is appended to the witness's postgresql.conf; its include
// file (port, sockets, listen_addresses) comes last, as on the pair.
const witnessConf = "\n# ---- written by test/cluster for the witness ----\n" +
	"wal_level = minimal\n" +
	"max_wal_senders = 0\n" +
	"fsync = off\n" +
	"password_encryption = 'scram-sha-256'\n" +
	"log_line_prefix = '%m [%p] %b '\n" +
	"logging_collector = off\n" +
	"shared_buffers = '32MB'\n" +
	"max_connections = 50\n" +
	"include_if_exists = '" + confInclude + "'\n"

// writeWitnessHBA writes the witness's pg_hba.conf: first, then trust for
// the unix socket (the test's own sessions as postgres), and a password
// (SCRAM) for the witness role on its database over TCP from the pair's
// addresses. Nothing else: no replication, no other role over TCP.
func (n *Node) writeWitnessHBA(first string) error {
	hba := "# written by test/cluster for the witness\n" + first + "\n" +
		"local all all trust\n"
	for _, k := range []*Node{n.c.Master, n.c.Standby} {
		if k == nil {
			continue
		}
		for _, a := range k.addrs() {
			hba += fmt.Sprintf("host  %s %s %s/32 scram-sha-256\n", WitnessDB, WitnessUser, a)
		}
	}
	path := filepath.Join(n.DataDir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte(hba), 0o600); err != nil {
		return err
	}
	return chownPG(path)
}
