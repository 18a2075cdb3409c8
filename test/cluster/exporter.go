package cluster

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ExporterBin is Debian's postgres_exporter (package prometheus-postgres-exporter).
const ExporterBin = "/usr/bin/prometheus-postgres-exporter"

// Exporter is a postgres_exporter scraping one node, with only the queries
// of a query file (no built-in metrics), on a 127.0.0.1 port of its own.
type Exporter struct {
	Port int
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // its log (stderr and stdout)
}

// StartExporter runs the exporter against n with the queries of
// queryFile; cleanup kills it.
func StartExporter(t testing.TB, n *Node, queryFile string) *Exporter {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	e := &Exporter{Port: port}
	args := []string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--extend.query-path=" + queryFile,
		"--disable-default-metrics", "--disable-settings-metrics"}
	collectors, err := exporterCollectors()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range collectors {
		args = append(args, "--no-collector."+c)
	}
	e.cmd = exec.Command(ExporterBin, args...)
	// lib/pq, which the exporter uses, defaults to sslmode=require.
	e.cmd.Env = []string{"PATH=/usr/bin:/bin", "DATA_SOURCE_NAME=" + n.Conninfo("sslmode=disable")}
	e.cmd.Stdout, e.cmd.Stderr = e, e
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", ExporterBin, err)
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("--- postgres_exporter for %s (port %d) ---\n%s", n.Name, port, e.Log())
		}
	})
	Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		return portOpen("127.0.0.1", port)
	}, "postgres_exporter did not start listening; its log:\n"+e.Log())
	return e
}

// collectorFlag is a built-in collector's switch in the exporter's help.
var collectorFlag = regexp.MustCompile(`--(?:\[no-\])?collector\.([a-z_]+)\s`)

// exporterCollectors names the exporter's built-in collectors, to switch
// them all off: only the query file's metrics matter here, and the set
// changes between releases (0.11 has bgwriter, 0.19 stat_bgwriter).
func exporterCollectors() ([]string, error) {
	out, err := exec.Command(ExporterBin, "--help-long").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --help-long: %v: %s", ExporterBin, err, out)
	}
	seen := map[string]bool{}
	var names []string
	for _, m := range collectorFlag.FindAllStringSubmatch(string(out), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names, nil
}

// Write collects the exporter's output (io.Writer, for exec.Cmd).
func (e *Exporter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.Write(p)
}

// Log is the exporter's output so far.
func (e *Exporter) Log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

// Scrape is one GET /metrics, parsed: each series ("name{a="1",b="2"}", as
// the exporter writes it) with its value.
func (e *Exporter) Scrape() (map[string]float64, error) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.Port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, body)
	}
	series := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		// The value comes last (the exporter writes no timestamps).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("GET /metrics: cannot parse %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("GET /metrics: cannot parse %q: %w", line, err)
		}
		series[line[:i]] = v
	}
	return series, nil
}

var labelPair = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// Value finds the series of metric name whose labels include labels, and
// returns its value; ok is false if there is none, and it fails the test if
// there are several.
func Value(t testing.TB, series map[string]float64, name string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	var found []string
	for s, val := range series {
		n, ls, _ := strings.Cut(s, "{")
		if n != name {
			continue
		}
		have := map[string]string{}
		for _, m := range labelPair.FindAllStringSubmatch(ls, -1) {
			have[m[1]] = m[2]
		}
		match := true
		for k, want := range labels {
			match = match && have[k] == want
		}
		if match {
			found, v = append(found, s), val
		}
	}
	if len(found) > 1 {
		t.Fatalf("several series match %s %v: %v", name, labels, found)
	}
	return v, len(found) == 1
}

func (e *Exporter) stop() {
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	_ = e.cmd.Wait()
}
