package test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSwitchover: pg_keeper.switchover() under a steady insert load
// on the master. The write pause runs from the last commit acknowledged by
// the old master to the first on the new one (the client reconnects every
// 5 ms); the rejoin, from the call to the old master being the new one's
// synchronous standby again.
func BenchmarkSwitchover(b *testing.B) {
	var pause, rejoined []time.Duration
	lost := 0
	for i := 0; i < b.N; i++ {
		c := newPair(b, benchSettings)
		createExtension(b, c)
		l := startPacedLoad(b, c.Master, benchPause)
		l.waitAcked(b, 100, 30*time.Second, "load")
		start := time.Now()
		switchover(b, c.Master)
		untilWrite(b, c.Standby, start)
		firstWrite := time.Now()
		l.mu.Lock()
		lastAck := l.at[len(l.at)-1]
		l.mu.Unlock()
		acked := l.ackedIDs()
		l.stop()
		pause = append(pause, firstWrite.Sub(lastAck))
		lost += countMissing(b, c.Standby, acked)
		waitSyncStandby(b, c.Standby, c.Master)
		rejoined = append(rejoined, time.Since(start))
	}
	printRow("switchover: write pause (last ack -> first write)", pause, "")
	printRow("switchover: call -> old master synchronous standby", rejoined, "")
	fmt.Printf("%-48s %d\n", "switchover: acknowledged commits lost", lost)
}

// BenchmarkRejoin: the old master, killed and started again with
// auto_rejoin, until it is the new master's synchronous standby.
func BenchmarkRejoin(b *testing.B) {
	var took []time.Duration
	settings := map[string]string{"wal_log_hints": "on", "pg_keeper.auto_rejoin": "on"}
	for k, v := range benchSettings {
		settings[k] = v
	}
	for i := 0; i < b.N; i++ {
		c := newPair(b, settings)
		createExtension(b, c)
		l := startPacedLoad(b, c.Master, benchPause)
		l.waitAcked(b, 100, 30*time.Second, "load")
		c.Master.Kill9(b)
		l.stop()
		waitPromoted(b, c.Standby)
		start := time.Now()
		_ = c.Master.TryStart() // it stops at once to be rewound
		waitSyncStandby(b, c.Standby, c.Master)
		took = append(took, time.Since(start))
	}
	printRow("rejoin: old master started -> synchronous standby", took, "fence, pg_rewind, restart, catch up")
}
