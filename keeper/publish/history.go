// Package publish writes what pg_keeper.status and pg_keeper.events() show:
// the status and event records as JSON that any database encoding reads,
// bounded to the shared-memory slots, and the events file in the data
// directory that a restarted server reloads.
package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/internal/durable"
)

// Record is one entry of pg_keeper.events(): what the keeper did and why.
type Record struct {
	At         time.Time `json:"at"`
	Node       string    `json:"node"` // host:port of the server that recorded it
	Kind       string    `json:"kind"` // one of the Kind* constants
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Action     string    `json:"action,omitempty"`
	OK         *bool     `json:"ok,omitempty"`
	ExitStatus *int      `json:"exit_status,omitempty"`
	DurationMS *int64    `json:"duration_ms,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Kinds of Record.
const (
	KindStart       = "start" // the worker started
	KindStop        = "stop"  // the worker stopped with the server
	KindTransition  = "transition"
	KindAction      = "action" // promote, switch-async, restore-sync, fence
	KindAfterCmd    = "after_command"
	KindStateChange = "state_change_command"
	KindRequest     = "request"     // pg_keeper.switchover(), pause(), resume(), or a takeover, answered
	KindMaintenance = "maintenance" // maintenance mode went on or off here
	KindRestart     = "restart"     // what the switchover's or rejoin's helper did before this start
)

// HistoryFile keeps the events in the data directory, one JSON object per
// line, so that they survive a restart of the server.
const HistoryFile = "pg_keeper.events"

// asciiJSON is json.Marshal with every non-ASCII character escaped: SQL
// reads the text in the database's encoding, which need not be UTF-8
// (SQL_ASCII, LATIN1, EUC_JP, ...), and ASCII means the same in all of them.
func asciiJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	ascii := true
	for _, c := range b {
		ascii = ascii && c < utf8.RuneSelf
	}
	if ascii {
		return b, nil
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf:
			out.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.Bytes(), nil
}

// EncodeRecord marshals rec, shortening Detail until it fits in EventMax.
// NUL bytes are dropped: jsonb refuses \u0000, and one such event would
// break pg_keeper.events() until it rotates out.
func EncodeRecord(rec Record) []byte {
	rec.Detail = strings.ReplaceAll(rec.Detail, "\x00", "")
	for {
		b, err := asciiJSON(rec)
		if err != nil { // cannot happen with these field types
			b = []byte(fmt.Sprintf(`{"kind":"error","detail":%q}`, err.Error()))
		}
		if len(b) < EventMax || rec.Detail == "" {
			return b // too long without a detail: the host refuses it, and says so
		}
		// Escapes make the JSON longer than the text: cut at most half at
		// a time, so that an escape-heavy detail keeps what fits.
		n := max(len(rec.Detail)-(len(b)-EventMax)-8, len(rec.Detail)/2)
		cut := truncate(rec.Detail, n)
		if len(cut) >= len(rec.Detail) {
			cut = ""
		}
		rec.Detail = cut
	}
}

// truncate cuts s to at most n bytes on a rune boundary and marks the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n-len("..."), 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// History appends records to the file from a goroutine of its own: a slow
// disk must not delay a failover. The file is rewritten with the last
// EventSlots records when it has grown to twice that.
type History struct {
	path   string
	writes chan []byte
	done   chan struct{} // closed when the writer has finished
	errs   func(error)   // reports a write error; called from the writer goroutine
}

// LoadHistory reads the records that node kept in dataDir, the last
// EventSlots of them. Records of another node came with a copy of its data
// directory (pg_basebackup, pg_rewind) and are not this server's history. A
// damaged line (a crash during a write) is skipped.
func LoadHistory(dataDir, node string) ([][]byte, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, HistoryFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs [][]byte
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		var rec struct{ Node string }
		if len(line) < EventMax && json.Unmarshal(line, &rec) == nil && rec.Node == node {
			recs = append(recs, line)
		}
	}
	if len(recs) > EventSlots {
		recs = recs[len(recs)-EventSlots:]
	}
	return recs, nil
}

// StartHistory starts the writer with the records already in the file.
func StartHistory(dataDir string, recent [][]byte, errs func(error)) *History {
	h := &History{path: filepath.Join(dataDir, HistoryFile), writes: make(chan []byte, EventSlots),
		done: make(chan struct{}), errs: errs}
	go h.writer(recent)
	return h
}

// add queues rec for the file; it never blocks.
func (h *History) Add(rec []byte) {
	select {
	case h.writes <- rec:
	default:
		h.errs(fmt.Errorf("could not keep up writing %s: an event was not saved", h.path))
	}
}

func (h *History) writer(recent [][]byte) {
	defer close(h.done)
	defer func() {
		if p := recover(); p != nil {
			h.errs(fmt.Errorf("internal error writing %s: %v", h.path, p))
		}
	}()
	lines := 2 * EventSlots // the file's length is unknown: rewrite it at the first write
	for rec := range h.writes {
		recent = append(recent, rec)
		if len(recent) > EventSlots {
			recent = recent[len(recent)-EventSlots:]
		}
		var err error
		if lines++; lines > 2*EventSlots {
			if err = durable.WriteFile(h.path, string(bytes.Join(recent, []byte{'\n'}))+"\n"); err == nil {
				lines = len(recent)
			}
		} else {
			err = appendLine(h.path, rec)
		}
		if err != nil {
			h.errs(fmt.Errorf("could not save an event in %s: %v", h.path, err))
		}
	}
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func Ptr[T any](v T) *T { return &v }

// close waits up to timeout for the queued records to reach the file.
func (h *History) Close(timeout time.Duration) {
	close(h.writes)
	select {
	case <-h.done:
	case <-time.After(timeout):
	}
}

// FromReport is the event of a result the core took (core.Report).
func FromReport(rep core.Report) Record {
	rec := Record{At: rep.At, Kind: KindAction, Action: rep.Action.String(), OK: Ptr(rep.OK), Detail: rep.Detail}
	switch rep.Kind {
	case core.CommandReport:
		rec.Kind, rec.Action = KindAfterCmd, ""
		if rep.Action == core.RunStateChange {
			rec.Kind = KindStateChange
		}
		rec.DurationMS = Ptr(rep.Duration.Milliseconds())
		if rep.ExitStatus >= 0 {
			rec.ExitStatus = Ptr(rep.ExitStatus)
		}
	case core.MaintenanceReport:
		rec.Kind, rec.Action = KindMaintenance, ""
	default:
		rec.DurationMS = Ptr(rep.Duration.Milliseconds())
	}
	return rec
}
