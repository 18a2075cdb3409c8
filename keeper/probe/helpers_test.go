package probe

import "time"

// t0 is the partner's start time in these tests, and masterLSN a master's
// WAL position.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const masterLSN = 0x3000060
