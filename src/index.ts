// pincoh as a library: import { Coordinator } from 'pincoh'.

export { version } from './paths.js';
