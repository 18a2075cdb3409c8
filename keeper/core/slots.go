package core

import "time"

// slotsRetry is how long a standby waits to look again for failover slots
// of its own after a look that failed or found one in use: each look is a
// session on this server, too much for every heartbeat.
const slotsRetry = 30 * time.Second

// SetSyncSlots says whether this server synchronizes failover slots from
// its primary (PostgreSQL 17+, sync_replication_slots). Turned on by a
// reload, a standby looks for slots of its own again.
func (c *Core) SetSyncSlots(on bool) {
	if on && !c.syncSlots && c.state.Mode() == StandbyMode {
		c.slotsPending, c.slotsNotBefore = true, time.Time{}
	}
	c.syncSlots = on
}

// staleSlotsDue says whether t, a heartbeat that reached the master,
// drops this standby's failover slots of its own (DropStaleSlots): at
// the first one since the start in standby mode, whatever state the
// standby was in (it may have lost its heartbeats first), and again
// slotsRetry after a drop that did not succeed.
func (c *Core) staleSlotsDue(t *Transition, at time.Time) bool {
	return c.syncSlots && c.slotsPending && t.On == PartnerUp && t.To == StandbyConnected &&
		t.Do == NoAction && !at.Before(c.slotsNotBefore)
}

// staleSlotsResult takes a drop's result: one that succeeded, even with
// nothing to drop, is the last until the next start.
func (c *Core) staleSlotsResult(in Input) {
	if in.Err == "" {
		c.slotsPending = false
	}
}
