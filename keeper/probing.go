package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pg-keeper/pg_keeper/keeper/command"
	"github.com/pg-keeper/pg_keeper/keeper/conninfo"
	"github.com/pg-keeper/pg_keeper/keeper/core"
	"github.com/pg-keeper/pg_keeper/keeper/probe"
	"golang.org/x/sys/unix"
)

// startProbe runs the heartbeat the core asked for, with the local checks
// it asked for, in a goroutine; the result comes back as a ProbeInput.
func (r *runner) startProbe(req core.ProbeRequest) {
	partner, localCfg := r.settings.Partner, r.settings.Local
	interval, self := r.settings.Interval, r.settings.Self
	if req.Mode == core.MasterMode {
		self.Timeline, _ = r.host.Timeline()
	}
	receiverName, partnerName := r.settings.ReceiverName, r.partnerName
	r.probed = partner
	fallback := core.Input{Kind: core.ProbeInput, Probe: core.ProbeResult{Class: core.FailOther, LocalLSN: -1}}
	r.spawn(message{input: &fallback}, func() message {
		ctx, cancel := context.WithTimeout(r.ctx, interval)
		res := probe.Probe(ctx, partner, self, req.Mode, receiverName)
		cancel()
		local := func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(r.ctx, max(interval, 100*time.Millisecond))
		}
		if !res.OK && req.Replication {
			ctx, cancel := local()
			res.ReplicationAlive, res.LocalLSN, _ = probe.ReplicationAlive(ctx, localCfg, req.Mode, partnerName)
			cancel()
		}
		if res.OK && req.Streaming {
			ctx, cancel := local()
			streaming, err := probe.StandbyCaughtUp(ctx, localCfg, res.Partner.ReceiverName)
			cancel()
			// An error: this server cannot tell, and the heartbeat stands.
			res.StreamingChecked, res.CaughtUp = err == nil, streaming
		}
		return message{input: &core.Input{Kind: core.ProbeInput, At: time.Now(), Probe: res}}
	})
}

// learnTLS stops asking for TLS first once the partner has refused it
// (see plainFirst), until the settings are reloaded.
func (r *runner) learnTLS(p core.ProbeResult) {
	// A reload since the heartbeat started may have asked for TLS for sure.
	if !p.TLSRefused || r.settings.Partner == nil || r.settings.Partner != r.probed {
		return
	}
	next := conninfo.PlainFirst(r.settings.Partner)
	if next == r.settings.Partner {
		return // nothing to reorder: TLS is required, or not asked for
	}
	r.settings.Partner = next
	r.log(core.Info, "the partner refused TLS (sslmode=prefer): heartbeats now try without it first; "+
		"set sslmode in pg_keeper.partner_conninfo to choose")
}

// spawn runs f in a goroutine that cannot take the server down: a panic
// becomes the fallback message, with the panic as its error.
func (r *runner) spawn(fallback message, f func() message) { go r.deliver(fallback, f) }

// deliver runs f and hands its message to the main loop.
func (r *runner) deliver(fallback message, f func() message) {
	var m message
	defer func() {
		if p := recover(); p != nil {
			m = fallback
			msg := fmt.Sprintf("internal error: %v", p)
			if m.input != nil {
				in := *m.input
				in.At = time.Now()
				in.Err, in.Probe.Detail = msg, msg
				m.input = &in
			}
			if m.command != nil || m.hook != "" {
				m.command = &command.Result{Err: errors.New(msg), ExitCode: -1}
			}
		}
		r.inbox <- m
		r.wake()
	}()
	m = f()
}

func (r *runner) wake() { _, _ = unix.Write(r.wakeW, []byte{0}) }
