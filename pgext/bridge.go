// Package pgext is the only cgo package: it turns the C shim's callback
// table (bgworker/pg_keeper_bridge.h) into a keeper.Host.
//
// PostgreSQL is single-threaded. A Bridge may only be used from the
// goroutine that the C shim called into, which cgo keeps locked to the
// worker's main thread. The C callbacks check the thread again and refuse
// to work anywhere else.
package pgext

/*
#cgo CFLAGS: -I${SRCDIR}/../bgworker
#include <stdlib.h>
#include "pg_keeper_bridge.h"

// cgo cannot call C function pointers: these small helpers do.
static int pgk_call_log(const PgkBridge *b, int level, const char *msg) { return b->log(level, msg); }
static int pgk_call_set_title(const PgkBridge *b, const char *t) { return b->set_title(t); }
static int pgk_call_wait(const PgkBridge *b, int fd, long ms, long poll, int was, int promoted) { return b->wait(fd, ms, poll, was, promoted); }
static int pgk_call_config(const PgkBridge *b, PgkConfig *c) { return b->config(c); }
static int pgk_call_in_recovery(const PgkBridge *b) { return b->in_recovery(); }
static int pgk_call_timeline(const PgkBridge *b) { return b->timeline(); }
static int pgk_call_set_fence(const PgkBridge *b, int f) { return b->set_fence(f); }
static int pgk_call_get_fence(const PgkBridge *b) { return b->get_fence(); }
static int pgk_call_replication_state(const PgkBridge *b) { return b->replication_state(); }
static int pgk_call_publish_status(const PgkBridge *b, const char *j) { return b->publish_status(j); }
static int pgk_call_add_event(const PgkBridge *b, const char *j) { return b->add_event(j); }
static int pgk_call_reset_events(const PgkBridge *b) { return b->reset_events(); }
static int pgk_call_take_request(const PgkBridge *b, int *kind, char *arg, int len) { return b->take_request(kind, arg, len); }
static int pgk_call_emit_keepalive(const PgkBridge *b) { return b->emit_keepalive(); }
static int pgk_call_answer_request(const PgkBridge *b, unsigned int seq, int ok, const char *m) { return b->answer_request(seq, ok, m); }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pg-keeper/pg_keeper/keeper"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/publish"
	"github.com/pg-keeper/pg_keeper/keeper/settings"
)

// Bridge is a keeper.Host backed by the C shim.
type Bridge struct {
	b   *C.PgkBridge
	tid int // the thread the shim called in on
}

// pgEpoch is where PostgreSQL's timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	errThread = errors.New("called from a thread other than the worker's main thread")
	errPG     = errors.New("PostgreSQL reported an error (see the previous log line)")
)

// New wraps the table the shim passed to the entry point. It must be called
// on the entry point's goroutine.
func New(p unsafe.Pointer) (*Bridge, error) {
	b := (*C.PgkBridge)(p)
	if b == nil || b.version != C.PGK_BRIDGE_VERSION || !constantsMatch() {
		return nil, fmt.Errorf("the C shim and the Go library do not match: reinstall pg_keeper and restart the server")
	}
	return &Bridge{b: b, tid: unix.Gettid()}, nil
}

// constantsMatch: the facts the C shim and the keeper share are written
// once in pg_keeper_bridge.h; the Go side's copies are checked here, once,
// when the worker starts.
func constantsMatch() bool {
	return C.PGK_STATUS_MAX == publish.StatusMax && C.PGK_EVENT_MAX == publish.EventMax &&
		C.PGK_EVENT_SLOTS == publish.EventSlots &&
		C.PGK_APPLICATION_NAME == conninfo.ApplicationName && C.PGK_CONFIRM_FILE == core.ConfirmFile &&
		C.PGK_LEVEL_LOG == int(core.Info) && C.PGK_LEVEL_DEBUG == int(core.Debug) &&
		C.PGK_LEVEL_WARNING == int(core.Warning) && C.PGK_LEVEL_ERROR == int(core.Error) &&
		C.PGK_WAKE_LATCH == int(keeper.WakeLatch) && C.PGK_WAKE_SOCKET == int(keeper.WakeSocket) &&
		C.PGK_WAKE_TIMEOUT == int(keeper.WakeTimeout) && C.PGK_WAKE_SHUTDOWN == int(keeper.WakeShutdown) &&
		C.PGK_WAKE_RELOAD == int(keeper.WakeReload) && C.PGK_WAKE_WATCH == int(keeper.WakeWatch) &&
		C.PGK_FENCE_UNCONFIRMED == int(core.FenceUnconfirmed) && C.PGK_FENCE_OPEN == int(core.FenceOpen) &&
		C.PGK_FENCE_FENCED == int(core.FenceFenced) &&
		C.PGK_FENCE_SWITCHING == int(core.FenceSwitching) && C.PGK_FENCE_STOPPING == int(core.FenceStopping) &&
		C.PGK_FENCE_NO_LEASE == int(core.FenceNoLease) &&
		C.PGK_REQ_SWITCHOVER == int(core.SwitchoverRequest) && C.PGK_REQ_PAUSE == int(core.PauseRequest) &&
		C.PGK_REQ_RESUME == int(core.ResumeRequest) && C.PGK_REQ_TAKEOVER == int(core.TakeoverRequest) &&
		C.PGK_REQ_TAKEOVER_CANCEL == int(core.TakeoverCancelRequest) && C.PGK_REQ_TAKEOVER_CANCEL+1 == int(core.NumRequests)
}

func (b *Bridge) check(rc C.int) error {
	switch rc {
	case C.PGK_ERR_THREAD:
		return errThread
	case C.PGK_ERR_PG:
		return errPG
	}
	return nil
}

// onMainThread saves a call into C that would be refused anyway.
func (b *Bridge) onMainThread() bool { return unix.Gettid() == b.tid }

func (b *Bridge) Log(level core.Level, msg string) {
	if !b.onMainThread() {
		return
	}
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	C.pgk_call_log(b.b, C.int(level), cs)
}

func (b *Bridge) SetTitle(title string) {
	if !b.onMainThread() {
		return
	}
	cs := C.CString(title)
	defer C.free(unsafe.Pointer(cs))
	C.pgk_call_set_title(b.b, cs)
}

func (b *Bridge) Wait(fd int, timeout time.Duration, w keeper.Watch) (keeper.Wake, error) {
	if !b.onMainThread() {
		return 0, errThread
	}
	// Round up: a 0 ms wait for a 0.4 ms remainder would spin.
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	promoted := 0
	if w.Promoted {
		promoted = 1
	}
	poll := (w.Poll + time.Millisecond - 1) / time.Millisecond
	rc := C.pgk_call_wait(b.b, C.int(fd), C.long(ms), C.long(poll), C.int(max(w.Replication, -1)), C.int(promoted))
	if rc < 0 {
		return 0, b.check(rc)
	}
	return keeper.Wake(rc), nil
}

func (b *Bridge) Settings() (settings.Raw, error) {
	if !b.onMainThread() {
		return settings.Raw{}, errThread
	}
	var c C.PgkConfig
	if err := b.check(C.pgk_call_config(b.b, &c)); err != nil {
		return settings.Raw{}, err
	}
	// Copy now: the strings belong to the server's GUC storage.
	return settings.Raw{
		PartnerConninfo:     C.GoString(c.partner_conninfo),
		MyConninfo:          C.GoString(c.my_conninfo),
		AfterCommand:        C.GoString(c.after_command),
		KeepalivesTime:      float64(c.keepalives_time),
		KeepalivesCount:     int(c.keepalives_count),
		AfterCommandTimeout: int(c.after_command_timeout),
		StateChangeCommand:  C.GoString(c.state_change_command),
		StateChangeTimeout:  int(c.state_change_command_timeout),
		MaxFailoverLag:      int64(c.max_failover_lag),
		FailoverOnTimeout:   c.failover_on_timeout != 0,
		OnPartnerTimeout:    C.GoString(c.on_partner_timeout),
		Port:                int(c.port),
		SocketDirs:          C.GoString(c.socket_dirs),
		OSUser:              C.GoString(c.os_user),
		OSHome:              C.GoString(c.os_home),
		DataDir:             C.GoString(c.data_dir),
		PrimaryConninfo:     C.GoString(c.primary_conninfo),
		ClusterName:         C.GoString(c.cluster_name),
		SystemID:            uint64(c.system_identifier),
		StartTime:           pgEpoch.Add(time.Duration(c.start_time) * time.Microsecond),
		Maintenance:         c.maintenance != 0,
		AutoRejoin:          c.auto_rejoin != 0,
		WitnessConninfo:     C.GoString(c.witness_conninfo),
		FenceCommand:        C.GoString(c.fence_command),
		FenceCommandTimeout: int(c.fence_command_timeout),
		BinDir:              C.GoString(c.bindir),
		WalLogHints:         c.wal_log_hints != 0,
		DataChecksums:       c.data_checksums != 0,
		PostmasterPID:       int(c.postmaster_pid),
		SyncSlots:           c.sync_slots != 0,
	}, nil
}

func (b *Bridge) InRecovery() (bool, error) {
	if !b.onMainThread() {
		return false, errThread
	}
	rc := C.pgk_call_in_recovery(b.b)
	if rc < 0 {
		return false, b.check(rc)
	}
	return rc == 1, nil
}

func (b *Bridge) Timeline() (int, error) {
	if !b.onMainThread() {
		return 0, errThread
	}
	rc := C.pgk_call_timeline(b.b)
	if rc < 0 {
		return 0, b.check(rc)
	}
	return int(rc), nil
}

func (b *Bridge) SetFence(f core.Fence) error {
	if !b.onMainThread() {
		return errThread
	}
	return b.check(C.pgk_call_set_fence(b.b, C.int(f)))
}

func (b *Bridge) Fence() (core.Fence, error) {
	if !b.onMainThread() {
		return core.FenceUnconfirmed, errThread
	}
	rc := C.pgk_call_get_fence(b.b)
	if rc < 0 {
		return core.FenceUnconfirmed, b.check(rc)
	}
	return core.Fence(rc), nil
}

// CommitCounter reads the shim's counter of commits past the fence's
// check, from any goroutine: it is a 32-bit counter in shared memory, read
// with a locked add of 0 (a full barrier, as the shim's own reads are), and
// no PostgreSQL function is called.
func (b *Bridge) CommitCounter() func() int {
	p := (*uint32)(unsafe.Pointer(b.b.committing))
	if p == nil {
		return func() int { return 0 }
	}
	return func() int { return int(int32(atomic.AddUint32(p, 0))) }
}

func (b *Bridge) EmitKeepalive() (bool, error) {
	if !b.onMainThread() {
		return false, errThread
	}
	rc := C.pgk_call_emit_keepalive(b.b)
	if rc < 0 {
		return false, b.check(rc)
	}
	return rc == 1, nil
}

func (b *Bridge) ReplicationState() (int, error) {
	if !b.onMainThread() {
		return 0, errThread
	}
	rc := C.pgk_call_replication_state(b.b)
	if rc < 0 {
		return 0, b.check(rc)
	}
	return int(rc), nil
}

func (b *Bridge) PublishStatus(json []byte) error {
	return b.callWithText(json, func(cs *C.char) C.int { return C.pgk_call_publish_status(b.b, cs) })
}

func (b *Bridge) AddEvent(json []byte) error {
	return b.callWithText(json, func(cs *C.char) C.int { return C.pgk_call_add_event(b.b, cs) })
}

func (b *Bridge) ResetEvents() error {
	if !b.onMainThread() {
		return errThread
	}
	return b.check(C.pgk_call_reset_events(b.b))
}

func (b *Bridge) TakeRequest() (keeper.Request, bool, error) {
	if !b.onMainThread() {
		return keeper.Request{}, false, errThread
	}
	var kind C.int
	var arg [C.PGK_REQUEST_ARG_MAX]C.char
	rc := C.pgk_call_take_request(b.b, &kind, &arg[0], C.int(len(arg)))
	if rc <= 0 {
		return keeper.Request{}, false, b.check(rc)
	}
	return keeper.Request{Seq: uint32(rc), Kind: core.Request(kind), Arg: C.GoString(&arg[0])}, true, nil
}

// AnswerRequest: the shim cuts msg to fit (PGK_ANSWER_MAX).
func (b *Bridge) AnswerRequest(seq uint32, ok bool, msg string) error {
	if !b.onMainThread() {
		return errThread
	}
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	cok := C.int(0)
	if ok {
		cok = 1
	}
	return b.check(C.pgk_call_answer_request(b.b, C.uint(seq), cok, cs))
}

func (b *Bridge) callWithText(text []byte, call func(*C.char) C.int) error {
	if !b.onMainThread() {
		return errThread
	}
	cs := C.CString(string(text))
	defer C.free(unsafe.Pointer(cs))
	return b.check(call(cs))
}
