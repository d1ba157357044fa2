// pincoh as a library: import { Coordinator } from 'pincoh'.

export { Coordinator, type CoordinatorOptions, type Crash } from './coordinator.js';
export type { StatusSnapshot, ProcessStatus, Percentiles } from './coherence/status.js';
export type { PincohEvent } from './trace.js';
export { PincohError, type PincohErrorCode } from './errors.js';
export { version } from './paths.js';
