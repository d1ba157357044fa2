// Errors that say what to do. Every code starts with PINCOH_ERR_.

export type PincohErrorCode =
  | 'PINCOH_ERR_USAGE'
  | 'PINCOH_ERR_SOCKET_IN_USE'
  | 'PINCOH_ERR_SOCKET_PATH'
  | 'PINCOH_ERR_SHIM_MISSING'
  | 'PINCOH_ERR_PEERCRED'
  | 'PINCOH_ERR_LAUNCHER'
  | 'PINCOH_ERR_COORDINATOR'
  | 'PINCOH_ERR_EXEC'
  | 'PINCOH_ERR_TRACE'
  | 'PINCOH_ERR_METRICS';

export class PincohError extends Error {
  /** status: what the command exits with (2, or a shell's 126/127 for a program that cannot run) */
  constructor(readonly code: PincohErrorCode, message: string, readonly status = 2) {
    super(message);
    this.name = 'PincohError';
  }
}

/** A listener's error, thrown again outside the code that called it (a drain of the engine, say):
 * an uncaught exception of the program whose listener it is, not a broken coordinator. */
export function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}
