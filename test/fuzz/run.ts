// npm run fuzz [-- FRAMES]: 10^6 frames by default at an in-process coordinator,
// while a well-behaved job runs beside them; reports memory before and after.

import { Engine } from '../../src/coherence/engine.js';
import { CoordinatorServer } from '../../src/transport/server.js';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fuzz } from './fuzzer.js';
import { example, shimEnv, tempDir } from '../helpers.js';

const frames = Number(process.argv[2] ?? 1_000_000);
const path = join(tempDir('fuzz'), 'c.sock');
let cut = 0;
const engine = new Engine({ mremapFollow: false, revokeTimeoutMs: 50 });
const server = new CoordinatorServer({ socketPath: path, engine, log: () => void cut++ });
await server.listen();
/** heap after a full collection (run with --expose-gc), in MiB */
const heap = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return (process.memoryUsage().heapUsed / 2 ** 20).toFixed(1);
};
const heap0 = heap();
const t0 = Date.now();
const good = spawn(example('regcache'), ['5000'], { env: shimEnv(path), stdio: ['ignore', 'pipe', 'inherit'] });
let goodOut = '';
good.stdout.on('data', (d) => (goodOut += d));
const goodDone = new Promise((r) => good.once('close', r));
const res = await fuzz(path, frames, Number(process.env.SEED ?? 1));
const secs = (Date.now() - t0) / 1000;
await goodDone;
await new Promise((r) => setTimeout(r, 200)); // the last connections close
console.log(`fuzz: ${res.frames} frames (${res.mutated} mutated) over ${res.connections} connections in ${secs.toFixed(1)} s`);
console.log(`fuzz: ${cut} connections cut off with a logged reason; live processes left ${engine.stats.live}; heap ${heap0} MiB before, ${heap()} MiB after`);
console.log(`fuzz: a well-behaved regcache ran beside it: ${goodOut.trim()}`);
await server.close();
