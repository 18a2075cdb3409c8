package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// netnsSubnet holds the addresses of the test hosts the harness makes in
// network namespaces of its own; nothing outside them is ever addressed.
const netnsSubnet = "10.213.0.0/16"

// setupNetns puts m and s into two new network namespaces joined by a veth
// pair: node1 has 10.213.N.1 (clients, heartbeats) and 10.213.N.11
// (replication), node2 10.213.N.2 and 10.213.N.12.
func (c *Cluster) setupNetns(m, s *Node) error {
	tag, subnet, err := netnsTag()
	if err != nil {
		return err
	}
	m.Netns, s.Netns = "pgk-"+tag+"-1", "pgk-"+tag+"-2"
	m.Addr, m.ReplAddr = subnet+".1", subnet+".11"
	s.Addr, s.ReplAddr = subnet+".2", subnet+".12"
	v1, v2 := "pgk"+tag+"a", "pgk"+tag+"b"
	c.netns = []string{m.Netns, s.Netns}
	cmds := [][]string{
		{"ip", "netns", "add", m.Netns},
		{"ip", "netns", "add", s.Netns},
		{"ip", "link", "add", v1, "type", "veth", "peer", "name", v2},
		{"ip", "link", "set", v1, "netns", m.Netns},
		{"ip", "link", "set", v2, "netns", s.Netns},
	}
	for _, n := range []struct {
		node *Node
		dev  string
	}{{m, v1}, {s, v2}} {
		cmds = append(cmds,
			[]string{"ip", "-n", n.node.Netns, "addr", "add", n.node.Addr + "/24", "dev", n.dev},
			[]string{"ip", "-n", n.node.Netns, "addr", "add", n.node.ReplAddr + "/24", "dev", n.dev},
			[]string{"ip", "-n", n.node.Netns, "link", "set", n.dev, "up"},
			[]string{"ip", "-n", n.node.Netns, "link", "set", "lo", "up"})
	}
	for _, argv := range cmds {
		if err := run(argv...); err != nil {
			return err
		}
	}
	for _, n := range []*Node{m, s} {
		n.SetConf("listen_addresses", "'"+n.Addr+","+n.ReplAddr+"'")
	}
	return nil
}

// Drop makes n's namespace drop every packet from the given addresses
// (without a reply, as a cut cable or a dead host would: the sender sees
// timeouts).
func (n *Node) Drop(t testing.TB, from ...string) {
	t.Helper()
	for _, a := range from {
		if err := run("ip", "netns", "exec", n.Netns, "iptables", "-A", "INPUT", "-s", a, "-j", "DROP"); err != nil {
			t.Fatal(err)
		}
	}
}

// DropTo makes n's namespace drop every packet addressed to one of its own
// addresses, e.g. ReplAddr to cut only the replication path.
func (n *Node) DropTo(t testing.TB, addr string) {
	t.Helper()
	if err := run("ip", "netns", "exec", n.Netns, "iptables", "-A", "INPUT", "-d", addr, "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
}

// Reject makes n's namespace refuse every TCP packet from the given
// addresses with an ICMP port-unreachable, as a firewall that REJECTs does
// (kube-proxy with no endpoint too): a new connection is refused at once,
// exactly as by a host whose server is down, while an established one
// (replication) gets no answer and times out. ICMP itself passes, so that
// the refusals reach the other side.
func (n *Node) Reject(t testing.TB, from ...string) {
	t.Helper()
	// The kernel sends at most one ICMP error a second to each address by
	// default; a firewall in front of a server answers every packet.
	if err := run("ip", "netns", "exec", n.Netns, "sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"); err != nil {
		t.Fatal(err)
	}
	for _, a := range from {
		if err := run("ip", "netns", "exec", n.Netns, "iptables", "-A", "INPUT", "-s", a, "-p", "tcp",
			"-j", "REJECT", "--reject-with", "icmp-port-unreachable"); err != nil {
			t.Fatal(err)
		}
	}
}

// RejectBetween is Partition with Reject instead of Drop.
func (c *Cluster) RejectBetween(t testing.TB) {
	t.Helper()
	c.Master.Reject(t, c.Standby.Addr, c.Standby.ReplAddr)
	c.Standby.Reject(t, c.Master.Addr, c.Master.ReplAddr)
}

// DropServer makes n's namespace drop every packet addressed to n's server
// at addr, one of its own addresses: new sessions there time out, while
// connections n opened itself and replication on its other address go on.
func (n *Node) DropServer(t testing.TB, addr string) {
	t.Helper()
	if err := run("ip", "netns", "exec", n.Netns, "iptables", "-A", "INPUT", "-d", addr, "-p", "tcp",
		"--dport", strconv.Itoa(n.Port), "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
}

// Vanish makes n's host disappear from the network without a word, as a
// power cut or a kernel panic does: every packet in or out of its
// namespace is dropped, so that not even the FIN or RST of a process that
// dies reaches anyone. Kill its processes (Kill9) after this.
func (n *Node) Vanish(t testing.TB) {
	t.Helper()
	for _, argv := range [][]string{{"INPUT", "!", "-i", "lo"}, {"OUTPUT", "!", "-o", "lo"}} {
		args := append([]string{"ip", "netns", "exec", n.Netns, "iptables", "-A"}, argv...)
		if err := run(append(args, "-j", "DROP")...); err != nil {
			t.Fatal(err)
		}
	}
}

// Heal removes every drop rule of n's namespace.
func (n *Node) Heal(t testing.TB) {
	t.Helper()
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if err := run("ip", "netns", "exec", n.Netns, "iptables", "-F", chain); err != nil {
			t.Fatal(err)
		}
	}
}

// Partition cuts the network between the two nodes both ways.
func (c *Cluster) Partition(t testing.TB) {
	t.Helper()
	c.Master.Drop(t, c.Standby.Addr, c.Standby.ReplAddr)
	c.Standby.Drop(t, c.Master.Addr, c.Master.ReplAddr)
}

// netnsTag returns a random tag for the names of a cluster's namespaces and
// links, and the first three octets of its /24 in netnsSubnet.
func netnsTag() (tag, subnet string, err error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(b[:]), fmt.Sprintf("10.213.%d", 1+int(b[0])%250), nil
}

// setupNetnsHub is setupNetns for three hosts: m, s and the witness w each
// get a namespace of their own, joined by a veth pair to a bridge in a
// fourth, the hub, as three machines plugged into one switch. The pair's
// addresses are those of setupNetns; w has 10.213.N.3 alone (Addr and
// ReplAddr). The hub has no address and no filter: cuts are made in the
// hosts' namespaces (Drop, Cut, ...), as for the pair.
func (c *Cluster) setupNetnsHub(m, s, w *Node) error {
	tag, subnet, err := netnsTag()
	if err != nil {
		return err
	}
	hub := "pgk-" + tag + "-hub"
	m.Netns, s.Netns, w.Netns = "pgk-"+tag+"-1", "pgk-"+tag+"-2", "pgk-"+tag+"-w"
	m.Addr, m.ReplAddr = subnet+".1", subnet+".11"
	s.Addr, s.ReplAddr = subnet+".2", subnet+".12"
	w.Addr, w.ReplAddr = subnet+".3", subnet+".3"
	// Before anything is made, so that cleanup removes whatever was. Every
	// link is made inside these namespaces, never in ours, and goes with
	// them.
	c.netns = []string{m.Netns, s.Netns, w.Netns, hub}
	const br = "pgkbr"
	cmds := [][]string{
		{"ip", "netns", "add", m.Netns},
		{"ip", "netns", "add", s.Netns},
		{"ip", "netns", "add", w.Netns},
		{"ip", "netns", "add", hub},
		// No STP: a port forwards as soon as it is up.
		{"ip", "-n", hub, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"ip", "-n", hub, "link", "set", br, "up"},
	}
	for i, n := range []*Node{m, s, w} {
		dev, port := "pgk"+tag+"h", fmt.Sprintf("pgkport%d", i+1)
		cmds = append(cmds,
			[]string{"ip", "link", "add", "name", dev, "netns", n.Netns, "type", "veth", "peer", "name", port, "netns", hub},
			[]string{"ip", "-n", hub, "link", "set", port, "master", br},
			[]string{"ip", "-n", hub, "link", "set", port, "up"},
			[]string{"ip", "-n", n.Netns, "addr", "add", n.Addr + "/24", "dev", dev})
		if n.ReplAddr != n.Addr {
			cmds = append(cmds, []string{"ip", "-n", n.Netns, "addr", "add", n.ReplAddr + "/24", "dev", dev})
		}
		cmds = append(cmds,
			[]string{"ip", "-n", n.Netns, "link", "set", dev, "up"},
			[]string{"ip", "-n", n.Netns, "link", "set", "lo", "up"})
	}
	for _, argv := range cmds {
		if err := run(argv...); err != nil {
			return err
		}
	}
	for _, n := range []*Node{m, s} {
		n.SetConf("listen_addresses", "'"+n.Addr+","+n.ReplAddr+"'")
	}
	w.SetConf("listen_addresses", "'"+w.Addr+"'")
	return nil
}

// addrs returns n's distinct addresses.
func (n *Node) addrs() []string {
	if n.ReplAddr == n.Addr {
		return []string{n.Addr}
	}
	return []string{n.Addr, n.ReplAddr}
}

// Cut drops every packet between a and b, both ways and on all their
// addresses, as Partition does for the pair: any two of node1, node2 and
// the witness. Each of them still reaches the third. HealAll (or Heal of
// both) undoes it.
func (c *Cluster) Cut(t testing.TB, a, b *Node) {
	t.Helper()
	if a == b || a.Netns == "" || b.Netns == "" {
		t.Fatalf("cluster: Cut(%s, %s) needs two nodes in network namespaces", a.Name, b.Name)
	}
	a.Drop(t, b.addrs()...)
	b.Drop(t, a.addrs()...)
}

// HealAll removes every drop rule of every node in a namespace, the witness
// included.
func (c *Cluster) HealAll(t testing.TB) {
	t.Helper()
	for _, n := range c.allNodes() {
		if n.Netns != "" {
			n.Heal(t)
		}
	}
}

func (c *Cluster) removeNetns() {
	for _, ns := range c.netns {
		_ = run("ip", "netns", "del", ns)
	}
}

func run(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}
