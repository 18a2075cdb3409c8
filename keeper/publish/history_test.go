package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/stretchr/testify/require"
)

// The saved history: how a Record is encoded, and how the events file in
// the data directory is read back and kept bounded.

// recordKeys are the keys sql/pg_keeper--1.0.sql reads from an event.
var recordKeys = []string{"at", "node", "kind", "from", "to", "trigger", "action", "ok", "exit_status", "duration_ms", "detail"}

// jsonKeys is the sorted keys of the JSON object b.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func decodeRecord(t *testing.T, b []byte) Record {
	t.Helper()
	var rec Record
	require.NoError(t, json.Unmarshal(b, &rec), "%s", b)
	return rec
}

func TestEncodeRecordIsPlainJSONWhenShort(t *testing.T) {
	full := Record{At: t0, Node: "db1:5432", Kind: KindStateChange, From: "master:ready", To: "master:connected",
		Trigger: "partner-up", Action: "promote", OK: Ptr(true), ExitStatus: Ptr(0), DurationMS: Ptr(int64(12)), Detail: "did it"}
	want, err := json.Marshal(full)
	require.NoError(t, err)
	require.Equal(t, string(want), string(EncodeRecord(full)))
	require.Equal(t, sorted(recordKeys), jsonKeys(t, EncodeRecord(full)), "every key the SQL reads")
	require.Equal(t, full, decodeRecord(t, EncodeRecord(full)))

	// Unset fields are left out, but a failure (ok false) and exit status 0
	// are facts, not absences.
	require.Equal(t, []string{"at", "kind", "node"}, jsonKeys(t, EncodeRecord(Record{At: t0, Node: "db1:5432", Kind: KindStart})))
	require.Equal(t, []string{"at", "exit_status", "kind", "node", "ok"},
		jsonKeys(t, EncodeRecord(Record{At: t0, Node: "db1:5432", Kind: KindAfterCmd, OK: Ptr(false), ExitStatus: Ptr(0)})))
}

// A detail of any size and content still fits in a slot of shared memory
// (EventMax, NUL included) as valid JSON, cut on a rune boundary.
func TestEncodeRecordShortensDetail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail string
		// full: the cut leaves most of the slot to the detail; not so when
		// JSON escapes blow the detail up (the cut is estimated in bytes
		// of the detail, not of its JSON). Every non-ASCII rune is such an
		// escape (\uXXXX, see asciiJSON), but these still keep at least
		// half of the slot (half).
		full, half bool
	}{
		{"ascii", strings.Repeat("a", 10_000), true, true},
		{"two-byte runes", strings.Repeat("é", 5_000), false, true},
		{"three-byte runes", strings.Repeat("日本", 2_000), false, true},
		{"four-byte runes", strings.Repeat("🐘", 2_500), false, true},
		{"mixed", strings.Repeat("aé日🐘", 1_000), false, true},
		{"escaped", strings.Repeat("<\"\\\n\x01&\u2028", 1_500), false, false},
		{"mostly ascii, some quotes", strings.Repeat(`key="value" `, 1_000), false, false},
		{"invalid utf-8", strings.Repeat("\xff", 10_000), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := Record{At: t0, Node: "db1.example.com:5432", Kind: KindStateChange, OK: Ptr(false),
				ExitStatus: Ptr(3), DurationMS: Ptr(int64(30_000)), Detail: tc.detail}
			b := EncodeRecord(rec)
			require.Less(t, len(b), EventMax)
			require.True(t, json.Valid(b), "%s", b)
			got := decodeRecord(t, b)
			require.True(t, utf8.ValidString(got.Detail))
			require.True(t, strings.HasSuffix(got.Detail, "..."), got.Detail)
			if utf8.ValidString(tc.detail) {
				require.True(t, strings.HasPrefix(tc.detail, strings.TrimSuffix(got.Detail, "...")), "a prefix of the detail")
			}
			if tc.full {
				require.Greater(t, len(b), EventMax-16, "only what does not fit is cut")
			}
			if tc.half {
				require.Greater(t, len(b), EventMax/2, "the cut keeps at least half of the slot")
			}
			// Nothing but the detail is touched.
			got.Detail, rec.Detail = "", ""
			require.Equal(t, rec, got)
		})
	}
}

// The longest record that fits is left alone; one byte more and the
// detail is cut.
func TestEncodeRecordAtTheLimit(t *testing.T) {
	rec := Record{At: t0, Node: "db1:5432", Kind: KindTransition, Detail: "x"}
	overhead := len(EncodeRecord(rec)) - 1
	rec.Detail = strings.Repeat("x", EventMax-1-overhead)
	b := EncodeRecord(rec)
	require.Len(t, b, EventMax-1)
	require.Equal(t, rec.Detail, decodeRecord(t, b).Detail)

	rec.Detail += "y"
	b = EncodeRecord(rec)
	require.Less(t, len(b), EventMax)
	require.True(t, strings.HasSuffix(decodeRecord(t, b).Detail, "xx..."))
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 0, ""},
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello world", 8, "hello..."},
		{"hello world", 3, "..."},
		{"éééé", 8, "éééé"},
		{"éééé", 6, "é..."},  // byte 3 is the middle of the second é
		{"éééé", 7, "éé..."}, // byte 4 starts the third
		{"日本語", 8, "日..."},   // 9 bytes; 5 left for text, 日 takes 3
		{"🐘🐘", 7, "🐘..."},
		{"🐘🐘", 6, "..."},               // no whole elephant in 3 bytes
		{"a🐘", 4, "a..."},              // cut inside the elephant
		{"ab\xffcdef", 6, "ab\xff..."}, // an invalid byte counts as a rune of its own
	} {
		got := truncate(tc.s, tc.n)
		require.Equal(t, tc.want, got, "truncate(%q, %d)", tc.s, tc.n)
	}

	// For any length: at most n bytes, valid UTF-8, a prefix and the mark.
	s := "aé日🐘" + strings.Repeat("x", 5) + "🐘日éa"
	for n := 3; n <= len(s)+1; n++ {
		got := truncate(s, n)
		require.LessOrEqual(t, len(got), n)
		require.True(t, utf8.ValidString(got), "%q", got)
		if n >= len(s) {
			require.Equal(t, s, got)
		} else {
			require.True(t, strings.HasSuffix(got, "..."))
			require.True(t, strings.HasPrefix(s, strings.TrimSuffix(got, "...")))
		}
	}
}

// eventLine is a saved event of node, as the runner writes it.
func eventLine(node, detail string) []byte {
	return EncodeRecord(Record{At: t0, Node: node, Kind: KindTransition, From: "standby:ready", To: "standby:connected",
		Trigger: "partner-up", Detail: detail})
}

func writeHistory(t *testing.T, dir string, lines ...[]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, HistoryFile), append(bytes.Join(lines, []byte{'\n'}), '\n'), 0o600))
}

// readHistory is the lines of the events file; each must end with a newline.
func readHistory(t *testing.T, dir string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, HistoryFile))
	require.NoError(t, err)
	if len(data) == 0 {
		return nil
	}
	require.Equal(t, byte('\n'), data[len(data)-1], "the file ends with a whole line")
	return bytes.Split(data[:len(data)-1], []byte{'\n'})
}

func TestLoadHistoryWithoutFile(t *testing.T) {
	t.Parallel()
	recs, err := LoadHistory(t.TempDir(), "db1:5432")
	require.NoError(t, err)
	require.Nil(t, recs)
}

func TestLoadHistoryUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, HistoryFile), 0o700))
	recs, err := LoadHistory(dir, "db1:5432")
	require.Error(t, err)
	require.Nil(t, recs)
}

// Only this node's whole records come back: a copy of the partner's data
// directory brings the partner's along, and a crash can leave half a line.
func TestLoadHistoryKeepsOnlyThisNodesWholeRecords(t *testing.T) {
	t.Parallel()
	const me = "db1:5432"
	mine1, mine2, mine3 := eventLine(me, "one"), eventLine(me, "two"), eventLine(me, "three")
	// The longest line that fits in a slot, and one byte too long.
	fits := eventLine(me, "")
	fits = eventLine(me, strings.Repeat("f", EventMax-1-len(fits)-len(`,"detail":""`)))
	require.Len(t, fits, EventMax-1)
	tooLong := []byte(fmt.Sprintf(`{"node":%q,"kind":"transition","detail":%q}`, me, strings.Repeat("x", EventMax)))
	require.True(t, json.Valid(tooLong))
	dir := t.TempDir()
	writeHistory(t, dir,
		mine1,
		eventLine("db2:5432", "the partner's"),
		eventLine("db1:54321", "another port"),
		eventLine("db1", "no port"),
		mine2[:len(mine2)/2], // a crash during the write
		[]byte(""),
		tooLong,
		fits,
		[]byte("not json"),
		[]byte(`["db1:5432"]`),
		[]byte(`null`),
		mine3,
	)
	recs, err := LoadHistory(dir, me)
	require.NoError(t, err)
	require.Equal(t, [][]byte{mine1, fits, mine3}, recs)

	recs, err = LoadHistory(dir, "db2:5432")
	require.NoError(t, err)
	require.Equal(t, [][]byte{eventLine("db2:5432", "the partner's")}, recs)
}

func TestLoadHistoryKeepsTheLastEventSlots(t *testing.T) {
	t.Parallel()
	const me = "db1:5432"
	var lines, mine [][]byte
	for i := range 3 * EventSlots {
		l := eventLine(me, fmt.Sprint(i))
		lines, mine = append(lines, l, eventLine("db2:5432", fmt.Sprint(i))), append(mine, l)
	}
	dir := t.TempDir()
	writeHistory(t, dir, lines...)
	recs, err := LoadHistory(dir, me)
	require.NoError(t, err)
	require.Equal(t, mine[len(mine)-EventSlots:], recs)
}

// errorLog collects what a history reports from its writer goroutine.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err.Error())
}

func (l *errorLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// addPaced queues recs, waiting for the writer now and then: add never
// blocks, it drops what the queue cannot take.
func addPaced(t *testing.T, h *History, dir string, recs [][]byte) {
	t.Helper()
	for i, rec := range recs {
		h.Add(rec)
		if (i+1)%(EventSlots/4) == 0 || i == len(recs)-1 {
			waitFor(t, "the writer", func() bool {
				data, err := os.ReadFile(filepath.Join(dir, HistoryFile))
				return err == nil && bytes.HasSuffix(data, append(append([]byte(nil), rec...), '\n'))
			})
		}
	}
}

// The first write replaces whatever the file held with the records loaded
// from it: the partner's and half-written lines go.
func TestHistoryFirstWriteRewritesTheFile(t *testing.T) {
	t.Parallel()
	const me = "db1:5432"
	dir := t.TempDir()
	mine := [][]byte{eventLine(me, "one"), eventLine(me, "two")}
	writeHistory(t, dir, mine[0], eventLine("db2:5432", "the partner's"), []byte(`{"node":"db1:5432","ki`), mine[1])
	loaded, err := LoadHistory(dir, me)
	require.NoError(t, err)
	require.Equal(t, mine, loaded)

	var errs errorLog
	h := StartHistory(dir, loaded, errs.add)
	added := [][]byte{eventLine(me, "three"), eventLine(me, "four")}
	for _, rec := range added {
		h.Add(rec)
	}
	h.Close(5 * time.Second)
	require.Empty(t, errs.all())
	require.Equal(t, append(mine, added...), readHistory(t, dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}

// The file holds between EventSlots and 2*EventSlots records: it is
// appended to, and rewritten with the last EventSlots when it would grow
// past 2*EventSlots.
func TestHistoryFileIsBounded(t *testing.T) {
	t.Parallel()
	const me = "db1:5432"
	for _, tc := range []struct {
		preloaded, added, wantLines int
	}{
		{0, 1, 1},
		{0, 5, 5},
		{EventSlots, 1, EventSlots}, // the first write rewrites
		{EventSlots, EventSlots + 1, 2 * EventSlots},
		{EventSlots, EventSlots + 2, EventSlots},
		{EventSlots, EventSlots + 72, EventSlots + 70}, // rewritten at the 130th, then 70 appended
	} {
		t.Run(fmt.Sprintf("%d+%d", tc.preloaded, tc.added), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var all [][]byte
			for i := range tc.preloaded + tc.added {
				all = append(all, eventLine(me, fmt.Sprint(i)))
			}
			if tc.preloaded > 0 {
				writeHistory(t, dir, all[:tc.preloaded]...)
			}
			loaded, err := LoadHistory(dir, me)
			require.NoError(t, err)
			require.Len(t, loaded, tc.preloaded)

			var errs errorLog
			h := StartHistory(dir, loaded, errs.add)
			addPaced(t, h, dir, all[tc.preloaded:])
			h.Close(5 * time.Second)
			require.Empty(t, errs.all())
			require.Equal(t, all[len(all)-tc.wantLines:], readHistory(t, dir), "the newest records, in order")

			// What a restart reads back is what pg_keeper.events() showed.
			reloaded, err := LoadHistory(dir, me)
			require.NoError(t, err)
			require.Equal(t, all[max(len(all)-EventSlots, 0):], reloaded)
		})
	}
}

func TestHistoryCloseWaitsForQueuedWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var errs errorLog
	h := StartHistory(dir, nil, errs.add)
	var recs [][]byte
	for i := range EventSlots / 2 {
		recs = append(recs, eventLine("db1:5432", fmt.Sprint(i)))
		h.Add(recs[i])
	}
	h.Close(5 * time.Second)
	require.Empty(t, errs.all())
	require.Equal(t, recs, readHistory(t, dir))
}

// A writer that cannot keep up costs events, never the caller's time.
func TestHistoryAddNeverBlocks(t *testing.T) {
	t.Parallel()
	var errs errorLog
	// No writer takes from the queue: it is full after one record.
	h := &History{path: "/data/pg_keeper.events", writes: make(chan []byte, 1), done: make(chan struct{}), errs: errs.add}
	h.Add([]byte("{}"))
	require.Empty(t, errs.all())
	start := time.Now()
	h.Add([]byte("{}"))
	h.Add([]byte("{}"))
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, []string{
		"could not keep up writing /data/pg_keeper.events: an event was not saved",
		"could not keep up writing /data/pg_keeper.events: an event was not saved",
	}, errs.all())

	// close gives up on a writer that does not finish.
	start = time.Now()
	h.Close(20 * time.Millisecond)
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestHistoryWriteErrorsAreReported(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "gone")
	path := filepath.Join(dir, HistoryFile)
	var errs errorLog
	h := StartHistory(dir, nil, errs.add)
	h.Add(eventLine("db1:5432", "one"))
	h.Add(eventLine("db1:5432", "two"))
	h.Close(5 * time.Second)
	require.Equal(t, []string{
		"could not save an event in " + path + ": open " + path + ".tmp: no such file or directory",
		"could not save an event in " + path + ": open " + path + ".tmp: no such file or directory",
	}, errs.all(), "a failed rewrite is tried again at the next write")
}

// JSON escapes (quotes, backslashes, <, >, &, control characters) make the
// encoded detail longer than the detail: an escape-heavy detail must still
// keep what fits in a slot, not shrink to "...".
func TestEncodeRecordKeepsMostOfAnEscapedDetail(t *testing.T) {
	rec := Record{At: t0, Node: "db1:5432", Kind: KindAfterCmd, Detail: strings.Repeat(`key="value" `, 1_000)}
	b := EncodeRecord(rec)
	require.Less(t, len(b), EventMax)
	require.Greater(t, len(b), EventMax/2, "%s", b)
}

// jsonb refuses \u0000: a NUL byte in a detail (command output, an error
// text) must not make pg_keeper.events() fail.
func TestEncodeRecordDropsNUL(t *testing.T) {
	b := EncodeRecord(Record{Kind: KindAction, Detail: "a\x00b"})
	require.NotContains(t, string(b), `\u0000`)
	require.Contains(t, string(b), `"detail":"ab"`)
}

// t0 is the time the records of these tests are made at.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// How the results the core reports are recorded.
func TestFromReport(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 1, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rep  core.Report
		want Record
	}{
		{"promoted", core.Report{Kind: core.ActionReport, At: at, Action: core.Promote, OK: true, Duration: 1500 * time.Millisecond,
			Detail: "pg_promote() took 1400 ms; now on timeline 3", ExitStatus: -1},
			Record{At: at, Kind: KindAction, Action: "promote", OK: Ptr(true), DurationMS: Ptr(int64(1500)),
				Detail: "pg_promote() took 1400 ms; now on timeline 3"}},
		{"promotion failed", core.Report{Kind: core.ActionReport, At: at, Action: core.Promote, Duration: 70 * time.Second,
			Detail: "could not connect", ExitStatus: -1},
			Record{At: at, Kind: KindAction, Action: "promote", OK: Ptr(false), DurationMS: Ptr(int64(70_000)), Detail: "could not connect"}},
		{"after_command succeeded", core.Report{Kind: core.CommandReport, At: at, Action: core.RunAfterCommand, OK: true,
			Duration: 42 * time.Millisecond, Detail: "exit status 0 after 42 ms"},
			Record{At: at, Kind: KindAfterCmd, OK: Ptr(true), ExitStatus: Ptr(0), DurationMS: Ptr(int64(42)), Detail: "exit status 0 after 42 ms"}},
		{"after_command failed", core.Report{Kind: core.CommandReport, At: at, Action: core.RunAfterCommand,
			Duration: 7 * time.Millisecond, ExitStatus: 2, Detail: "exit status 2 after 7 ms"},
			Record{At: at, Kind: KindAfterCmd, OK: Ptr(false), ExitStatus: Ptr(2), DurationMS: Ptr(int64(7)), Detail: "exit status 2 after 7 ms"}},
		{"after_command killed", core.Report{Kind: core.CommandReport, At: at, Action: core.RunAfterCommand,
			Duration: time.Minute, ExitStatus: -1, Detail: "killed after the timeout of 1m0s after 60000 ms"},
			Record{At: at, Kind: KindAfterCmd, OK: Ptr(false), DurationMS: Ptr(int64(60_000)),
				Detail: "killed after the timeout of 1m0s after 60000 ms"}},
		{"state change", core.Report{Kind: core.CommandReport, At: at, Action: core.RunStateChange, OK: true,
			Duration: 12 * time.Millisecond, Detail: "a -> b: exit status 0 after 12 ms"},
			Record{At: at, Kind: KindStateChange, OK: Ptr(true), ExitStatus: Ptr(0), DurationMS: Ptr(int64(12)),
				Detail: "a -> b: exit status 0 after 12 ms"}},
		{"maintenance", core.Report{Kind: core.MaintenanceReport, At: at, OK: true, Detail: "on", ExitStatus: -1},
			Record{At: at, Kind: KindMaintenance, OK: Ptr(true), Detail: "on"}},
	} {
		require.Equal(t, tc.want, FromReport(tc.rep), tc.name)
	}
}
