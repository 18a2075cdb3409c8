package core

import "time"

// Fence is the fence this state wants the server to hold: writes only on a
// confirmed primary (a standby cannot take any anyway).
func (c *Core) Fence() Fence {
	switch c.state {
	case MasterUnconfirmed:
		return FenceUnconfirmed
	case MasterFenced:
		return FenceFenced
	case MasterHandedOver, MasterRejoining:
		return FenceStopping
	case MasterSwitchingOver:
		return FenceSwitching // writes refused until the standby has everything
	}
	return FenceOpen
}

// answerGrace is how long the fast shutdown that ends a switchover waits
// after the answer to pg_keeper.switchover(): writes are refused already.
const answerGrace = 100 * time.Millisecond

// wantFence is the fence the output asks for at: the state's, except that
// a shutdown (FenceStopping) waits answerGrace after the last answer, so
// that the session that asked gets its answer before the shutdown ends it.
// A superseded server is fenced at once (FenceFenced), answer or not. A
// master whose lease is over while it cannot reach its standby takes no
// writes (leaseFence).
func (c *Core) wantFence(at time.Time) Fence {
	f := c.Fence()
	if f == FenceOpen && c.leaseFence(at) {
		return FenceNoLease
	}
	if f == FenceStopping && at.Before(c.answeredAt.Add(answerGrace)) {
		return c.fenceWish
	}
	return f
}
