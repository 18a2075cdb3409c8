package executor

import (
	"context"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
)

// heartbeat runs the heartbeat the core asked for, with the local checks it
// asked for; the result comes back as a ProbeInput. Each step has the
// interval as its deadline. The sessions it runs on stay open for the next
// heartbeat (probe.Session).
func (e *Executor) heartbeat(req core.ProbeRequest, env Env) {
	s := env.Settings
	partner, local := e.partnerConfig(s, req.PlainFirst), s.Local.Config
	interval, self, receiverName := s.Interval, s.Self, s.ReceiverName()
	if req.Mode == core.MasterMode {
		self.Timeline, _ = env.Timeline()
	}
	partnerName, _ := e.learnt()
	if req.Keepalive && env.Keepalive != nil {
		// On the main thread, before the heartbeat: the standby hears from
		// this server within the interval. A failure is logged by the
		// server; the standby then only counts replication for less.
		_, _ = env.Keepalive()
	}
	fallback := core.Input{Kind: core.ProbeInput, Probe: core.ProbeResult{Class: core.FailOther, LocalLSN: -1, Gen: req.Gen}}
	dataDir := s.DataDir
	e.spawn(fallback, func() core.Input {
		e.local.DataDir = dataDir
		var res core.ProbeResult
		if partner == nil {
			res = core.ProbeResult{Class: core.FailConfig, Detail: "pg_keeper.partner_conninfo is unusable", LocalLSN: -1}
		} else {
			ctx, cancel := context.WithTimeout(e.ctx, interval)
			res = probe.ProbeOn(ctx, &e.partner, partner, self, req.Mode, receiverName)
			cancel()
		}
		res.Gen = req.Gen
		localCtx := func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(e.ctx, max(interval, 100*time.Millisecond))
		}
		if !res.OK && req.Replication {
			ctx, cancel := localCtx()
			repl, err := e.local.ReplicationAlive(ctx, local, req.Mode, partnerName, req.Window)
			cancel()
			res.ReplicationAlive = repl.Alive
			if req.Mode == core.MasterMode {
				res.FlushKnown, res.FlushLSN = err == nil, repl.LSN
			} else {
				res.LocalLSN = repl.LSN
				res.FreshKnown, res.ReplicationFresh = err == nil && req.Window > 0, repl.Fresh
			}
		}
		if res.OK && req.Streaming {
			ctx, cancel := localCtx()
			streaming, flush, err := e.local.StandbyCaughtUp(ctx, local, res.Partner.ReceiverName)
			cancel()
			// An error: this server cannot tell, and the heartbeat stands.
			res.StreamingChecked, res.CaughtUp = err == nil, streaming
			res.FlushKnown, res.FlushLSN = err == nil, flush
		}
		if res.OK && res.Partner.ReceiverName != "" {
			e.mu.Lock()
			e.partnerName = res.Partner.ReceiverName
			e.mu.Unlock()
		}
		return core.Input{Kind: core.ProbeInput, At: time.Now(), Probe: res}
	})
}
