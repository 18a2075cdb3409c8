// Command lib is the Go library the worker loads (go build
// -buildmode=c-shared). This file holds its only //export: the entry point
// the C shim calls on the worker's main thread.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../bgworker
#include "pg_keeper_bridge.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/pg-keeper/pg_keeper/keeper"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/pgext"
)

// PgKeeperRun runs the keeper and returns the worker's exit code. It must
// not let a panic escape: that would abort the server process and make the
// postmaster restart every session.
//
//export PgKeeperRun
func PgKeeperRun(bridge *C.PgkBridge) (code C.int) {
	host, err := pgext.New(unsafe.Pointer(bridge))
	if err != nil {
		return 1 // nothing to log with: the table is unusable
	}
	defer func() {
		if p := recover(); p != nil {
			host.Log(core.Error, fmt.Sprintf("pg_keeper: internal error, the worker restarts: %v\n%s", p, debug.Stack()))
			code = 1
		}
	}()
	tune()
	return C.int(keeper.Run(host))
}

// tune sets in code what the environment cannot: PostgreSQL empties the
// worker's environment, so GOGC and friends never reach the runtime.
func tune() {
	// The keeper holds a few kilobytes of live data; collect often to keep
	// the heap, and so the worker's RSS, small.
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(32 << 20)
	// One P: the keeper runs no Go code in parallel, and with a second P
	// the runtime's monitor thread keeps waking (for up to 10 ms, every
	// 20 us at first) each time the main thread blocks in a wait through
	// cgo before it hands that P off (measured: the keeper process at a
	// 100 ms interval 2.8 % of a core with the default, 1.5 % with one).
	runtime.GOMAXPROCS(1)
}

func main() {}
