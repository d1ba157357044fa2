// GET /metrics of a live pincoh serve and pincoh run: scraped by the test,
// checked by Prometheus' own promtool, and scraped by a real Prometheus server.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLive } from '../src/transport/socket-path.js';
import { CLI, itWith, prog, run, startCli, startDriver, tempDir, until } from './helpers.js';

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const closed = new Promise((r) => c.once('close', r));
      c.kill('SIGTERM');
      await closed;
    }
  }
});

/** A serve with --metrics on a port the system picks; its socket and metrics URL. */
async function serveWithMetrics(): Promise<{ socket: string; url: string }> {
  const socket = join(tempDir('metrics'), 's.sock');
  const s = startCli(['serve', '--socket', socket, '--metrics', '127.0.0.1:0']);
  expect(await until(() => /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(s.err()), 10_000)).toBe(true);
  return { socket, url: /metrics on (\S+\/metrics)/.exec(s.err())![1]! };
}

/** An owner that registers, publishes and unmaps under an attacher: a registration, an invalidation and a revoke. */
async function aRevoke(socket: string): Promise<void> {
  const env = { PINCOH_JOB: 'm', PINCOH_SIZE: '2' };
  const owner = startDriver(socket, 'map 0 8192 reg 0 0 8192 rw pub buf 0 wait unmap 0 0 8192 wait', { ...env, PINCOH_RANK: '0' });
  await owner.waitFor(/^pub 0$/);
  const attacher = startDriver(socket, 'att buf 5000 wait', { ...env, PINCOH_RANK: '1' });
  await attacher.waitFor(/^att 0 0$/);
  owner.send();
  await owner.waitFor(/^munmap 0 777$/);
  owner.send();
  attacher.send();
  await Promise.all([owner.done, attacher.done]);
}

/** A metric's value in the text format, by name and exact label set ('' for none). */
function value(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Scrapes until pred holds (at most 10 s); the last scrape. */
async function scrapeUntil(url: string, pred: (text: string) => boolean): Promise<string> {
  const end = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(url)).text();
    if (pred(text) || Date.now() > end) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe('pincoh serve --metrics', () => {
  it('counts what happened: registrations, invalidations by cause, revokes, and the calls\' latency histogram; no address as a label', async () => {
    const { socket, url } = await serveWithMetrics();
    await aRevoke(socket);
    // both drivers have exited; the coordinator hears their sockets close a moment later
    const text = await scrapeUntil(url, (t) => value(t, 'pincoh_processes') === 0);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(value(text, 'pincoh_build_info', `version="0.1.0",nodejs="${process.versions.node}"`)).toBe(1);
    expect(value(text, 'pincoh_processes_connected_total')).toBe(2);
    expect(value(text, 'pincoh_registrations_total')).toBe(1);
    expect(value(text, 'pincoh_invalidations_total', 'cause="munmap"')).toBe(1);
    expect(value(text, 'pincoh_attachments_total')).toBe(1);
    expect(value(text, 'pincoh_revokes_total')).toBe(1);
    expect(value(text, 'pincoh_calls_total')).toBe(1);
    expect(value(text, 'pincoh_calls_waited_total')).toBe(0); // published memory, revoked in place: nothing waited for us
    expect(value(text, 'pincoh_call_duration_seconds_count', 'call="munmap"')).toBe(1);
    expect(value(text, 'pincoh_revoke_duration_seconds_count', 'outcome="dead"')).toBe(1);
    expect(value(text, 'pincoh_processes')).toBe(0); // both gone
    expect(text).not.toMatch(/\{[^}]*0x[0-9a-f]+/); // no address, key or pid as a label
    expect((await fetch(url.replace('/metrics', '/'))).status).toBe(404);
  });

  itWith(['promtool'], 'prometheus', 'promtool check metrics finds nothing to say', async () => {
    const { socket, url } = await serveWithMetrics();
    await aRevoke(socket);
    const text = await (await fetch(url)).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  itWith(['prometheus'], 'prometheus', 'a real Prometheus server scrapes it and answers queries of it', async () => {
    const { socket, url } = await serveWithMetrics();
    await aRevoke(socket);
    const dir = tempDir('prometheus');
    const target = new URL(url).host;
    writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pincoh\n    static_configs:\n      - targets: ['${target}']\n`);
    const port = await freePort();
    const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(prom);
    let log = '';
    prom.stderr!.on('data', (d) => (log += d));
    const query = async (q: string): Promise<string | undefined> => {
      try {
        const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data?: { result?: Array<{ value: [number, string] }> } };
        return r.data?.result?.[0]?.value[1];
      } catch {
        return undefined; // not up yet
      }
    };
    // scraped every second: the first answer that has the series
    let revokes: string | undefined;
    const end = Date.now() + 30_000;
    while (revokes === undefined && Date.now() < end) {
      revokes = await query('pincoh_revokes_total{job="pincoh"}');
      if (revokes === undefined) await new Promise((r) => setTimeout(r, 250));
    }
    const scraped = revokes !== undefined;
    expect(scraped, log).toBe(true);
    expect(revokes).toBe('1');
    expect(await query('up{job="pincoh"}')).toBe('1');
    expect(await query('pincoh_invalidations_total{cause="munmap"}')).toBe('1');
  }, 60_000);

  it('a port already taken: exit 2, the error names it, and nothing is left behind', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as { port: number }).port;
    const dir = tempDir('metrics-taken');
    const r = await run(process.execPath, [CLI, 'serve', '--socket', join(dir, 's.sock'), '--metrics', `127.0.0.1:${port}`]);
    taken.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: cannot serve metrics on 127.0.0.1:${port}: EADDRINUSE; choose another --metrics HOST:PORT [PINCOH_ERR_METRICS]\n`);
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout).toBe(''); // its socket removed
  });

  it('a port already taken, on the socket of a live coordinator: that coordinator\'s socket is left alone', async () => {
    const { socket, url } = await serveWithMetrics();
    const port = new URL(url).port;
    const r = await run(process.execPath, [CLI, 'serve', '--socket', socket, '--metrics', `127.0.0.1:${port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: cannot serve metrics on 127.0.0.1:${port}: EADDRINUSE; choose another --metrics HOST:PORT [PINCOH_ERR_METRICS]\n`);
    expect(await isLive(socket)).toBe(true);
  });
});

describe('pincoh run --metrics', () => {
  it('serves the job\'s metrics while it runs, and says where', async () => {
    const job = startCli(['run', '--metrics', '0', '--', prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'wait']);
    expect(await until(() => job.out().includes('reg 0 0'), 10_000)).toBe(true);
    const url = /; metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(job.err())?.[1];
    expect(url, job.err()).toBeDefined();
    const text = await (await fetch(url!)).text();
    expect(value(text, 'pincoh_processes')).toBe(1);
    expect(value(text, 'pincoh_registrations')).toBe(1);
    expect(value(text, 'pincoh_registered_bytes')).toBe(4096);
    job.child.stdin.write('go\n');
    expect(await job.closed).toBe(0);
  });
});
