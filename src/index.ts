// pincoh as a library: import { Coordinator } from 'pincoh'. pincoh run, serve
// and exec's coordinators are a Coordinator; pincoh status is fetchStatus and
// findCoordinators; pincoh report is readTraces and renderHtml.

export { Coordinator, type CoordinatorOptions, type Crash } from './coordinator.js';
export type { StatusSnapshot, ProcessStatus, Percentiles } from './coherence/status.js';
export { fetchStatus, findCoordinators } from './transport/control.js';
export { readTraces, type Report } from './report/aggregate.js';
export { renderHtml } from './report/render.js';
export type { PincohEvent } from './trace.js';
export { PincohError, type PincohErrorCode } from './errors.js';
export { version } from './paths.js';
