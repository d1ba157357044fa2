// The coordinator's limits and defaults, in one table: the engine, the
// server, Coordinator and the CLI (its help text and bounds) take them from
// here. The shim reads PINCOH_TIMEOUT_MS itself (native-shim/src/config.c):
// test/protocol-sync.test.ts holds its default and bounds equal to these.

import { FRAME_MAX, JT } from './protocol/constants.js';

export const DEFAULTS = {
  /** how long a put in flight may hold a revoke before its process is killed (--revoke-timeout-ms) */
  revokeTimeoutMs: 1000,
  /** how long the shim waits for the coordinator (PINCOH_TIMEOUT_MS) */
  shimTimeoutMs: 2000,
  /** serve --until-ranks, and exec's node coordinator: end after this long with nothing running (--idle-exit-ms) */
  idleExitMs: 30_000,
  /** pincoh status --watch: between redraws (--interval-ms) */
  statusIntervalMs: 1000,
  /** the largest frame a process may send (--max-frame) */
  maxFrame: FRAME_MAX,
  /** requests of one connection waiting for an answer (attach, barrier) before -EAGAIN (--max-pending) */
  maxPending: 256,
  /** bytes queued to a peer that does not read before it is cut off */
  maxQueuedBytes: 1 << 20,
  /** ms between drains of every ring: the bound on how late the coordinator learns of an unshared event */
  drainMs: 10,
  /** the longest an attach or a barrier may wait, whatever it asks for */
  maxWaitMs: 3_600_000,
  /** the engine's limits (WELCOME tells each process its own) */
  limits: {
    /** --max-registrations */
    registrationsPerProcess: 1 << 20,
    /** --max-attachments: at most the handles a member has in its job's table */
    attachmentsPerProcess: JT.HANDLES,
    /** hooked calls remembered while their events arrive */
    pendingPerProcess: 4096,
    /** --max-names */
    namesPerJob: 65536,
  },
} as const;

/** The bounds the shim and the coordinator accept; a value past them is refused by the CLI, not passed on. */
export const BOUNDS = {
  ranks: [1, 1024],
  /** PINCOH_TIMEOUT_MS, as the shim bounds it */
  timeoutMs: [1, 3_600_000],
  revokeTimeoutMs: [1, 3_600_000],
  maxFrame: [256, 1 << 24],
  maxRegistrations: [1, DEFAULTS.limits.registrationsPerProcess],
  maxAttachments: [1, JT.HANDLES],
  maxNames: [1, 1 << 24],
  maxPending: [1, 1 << 16],
  untilRanks: [1, 1 << 20],
  idleExitMs: [1, 2 ** 31 - 1],
  intervalMs: [50, 3_600_000],
} as const satisfies Record<string, readonly [number, number]>;
