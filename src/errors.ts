// Errors that say what to do. Every code starts with PINCOH_ERR_.

export type PincohErrorCode =
  | 'PINCOH_ERR_USAGE'
  | 'PINCOH_ERR_SOCKET_IN_USE'
  | 'PINCOH_ERR_SOCKET_PATH'
  | 'PINCOH_ERR_SHIM_MISSING'
  | 'PINCOH_ERR_PEERCRED'
  | 'PINCOH_ERR_LAUNCHER'
  | 'PINCOH_ERR_COORDINATOR'
  | 'PINCOH_ERR_EXEC';

export class PincohError extends Error {
  constructor(readonly code: PincohErrorCode, message: string) {
    super(message);
    this.name = 'PincohError';
  }
}
