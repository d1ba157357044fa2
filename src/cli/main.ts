// pincoh's command line: run and serve.

import { Engine } from '../coherence/engine.js';
import { PincohError } from '../errors.js';
import { launch, worstStatus } from '../job/launch.js';
import { shimPath } from '../paths.js';
import { Trace } from '../trace.js';
import { CoordinatorServer } from '../transport/server.js';
import { privateSocketPath } from '../transport/socket-path.js';
import { parseCli, USAGE, type LimitOptions, type RunOptions, type ServeOptions } from './options.js';

const engineLimits = (o: LimitOptions) => ({
  ...(o.maxRegistrations !== undefined && { registrationsPerProcess: o.maxRegistrations }),
  ...(o.maxAttachments !== undefined && { attachmentsPerProcess: o.maxAttachments }),
  ...(o.maxNames !== undefined && { namesPerJob: o.maxNames }),
});

async function run(o: RunOptions): Promise<number> {
  const shim = shimPath();
  const { path, cleanup } = privateSocketPath();
  const trace = new Trace(o.trace);
  // An attacher that does not answer a revoke is cut off well before the owner's own wait ends.
  const revokeTimeoutMs = Math.max(1, Math.min(1000, Math.floor((o.timeoutMs ?? 2000) / 2)));
  const engine = new Engine({ mremapFollow: o.mremap === 'follow', coherence: o.coherence, revokeTimeoutMs, trace, limits: engineLimits(o) });
  const server = new CoordinatorServer({ socketPath: path, engine, maxFrame: o.maxFrame, maxPending: o.maxPending });
  if (!o.coherence) process.stderr.write('pincoh: --no-coherence: attachments are never revoked; stale writes will happen\n');
  try {
    await server.listen();
    const job = `run-${process.pid}-${Date.now().toString(36)}`;
    const results = await launch({ argv: o.argv, ranks: o.ranks, shim, socket: path, timeoutMs: o.timeoutMs, job });
    // The ranks are gone; let the coordinator see their sockets close (and a
    // forked grandchild finish) so the summary and trace are complete.
    await server.drain(1000);
    for (const r of results) {
      if (r.error) process.stderr.write(`pincoh: rank ${r.rank} did not start: ${r.error}\n`);
      else if (r.signal) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) killed by ${r.signal}\n`);
      else if (r.code) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) exited with status ${r.code}\n`);
    }
    if (!o.quiet) process.stderr.write(engine.stats.summary() + '\n');
    return worstStatus(results);
  } finally {
    await server.close();
    trace.close();
    cleanup();
  }
}

async function serve(o: ServeOptions): Promise<number> {
  const trace = new Trace(o.trace);
  const engine = new Engine({ mremapFollow: o.mremap === 'follow', coherence: o.coherence, revokeTimeoutMs: o.revokeTimeoutMs, trace, limits: engineLimits(o) });
  const server = new CoordinatorServer({ socketPath: o.socket, engine, allowUids: o.allowUids, maxFrame: o.maxFrame, maxPending: o.maxPending });
  await server.listen();
  process.stderr.write(`pincoh: serving on ${o.socket} (mremap ${o.mremap}); stop with Ctrl-C\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  trace.close();
  process.stderr.write(engine.stats.summary() + '\n');
  return 0;
}

export async function main(args: string[]): Promise<number> {
  try {
    const o = parseCli(args);
    if (o.command === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    return o.command === 'run' ? await run(o) : await serve(o);
  } catch (err) {
    if (err instanceof PincohError) {
      process.stderr.write(`pincoh: ${err.message} [${err.code}]\n`);
      return 2;
    }
    throw err;
  }
}
