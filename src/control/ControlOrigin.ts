/**
 * The identity of this process's control event bus (ControlEvents is one per
 * process). The scheduler returns it with its events, so a gateway can tell
 * whether the scheduler's bus is its own (one process: every event is
 * already in it) or another process's, and notice a scheduler restart or
 * failover (a new origin, whose seqs start again at 1).
 */
export const processOrigin: string = `${process.pid}-${crypto.randomUUID()}`
