import { describe, expect, it } from 'vitest';
import { parseCli } from '../src/cli/options.js';
import { pincohEnv, preloadWith, rankEnv } from '../src/job/launch.js';

describe('parseCli', () => {
  it('reads run with its options and the command after --', () => {
    expect(parseCli(['run', '-n', '4', '--trace', '-', '--mremap=follow', '--', './prog', '-n', '2'])).toEqual({
      command: 'run', ranks: 4, trace: '-', mremap: 'follow', fork: 'keep', free: 'keep', coherence: true, audit: false, abortOnFailure: false, preload: [], timeoutMs: undefined, quiet: false, argv: ['./prog', '-n', '2'],
    });
  });

  it('takes the command without --, and defaults to one rank and invalidate', () => {
    expect(parseCli(['run', './prog', 'x'])).toMatchObject({ ranks: 1, mremap: 'invalidate', argv: ['./prog', 'x'] });
  });

  it('reads serve with repeated --allow-uid', () => {
    expect(parseCli(['serve', '--socket', '/tmp/s', '--allow-uid', '1000', '--allow-uid', '1001'])).toEqual({
      command: 'serve', socket: '/tmp/s', trace: undefined, mremap: 'invalidate', fork: 'keep', free: 'keep', coherence: true, revokeTimeoutMs: 1000, allowUids: [1000, 1001], untilRanks: undefined, idleExitMs: undefined,
    });
  });

  it('reads exec: its own options, and the policies and limits passed on to the coordinator it may start', () => {
    expect(parseCli(['exec', '--trace', '--output-dir', 'logs', '--mremap', 'follow', '--max-names', '9', '--no-coherence', '--timeout-ms', '500', '--', './prog', '-x'])).toEqual({
      command: 'exec', argv: ['./prog', '-x'], trace: true, outputDir: 'logs', timeoutMs: 500, idleExitMs: undefined,
      coordinatorArgs: ['--mremap', 'follow', '--no-coherence', '--max-names', '9', '--revoke-timeout-ms', '250'], // half the ranks' timeout, as run
    });
  });

  it.each([
    [['exec', '--'], /exec needs a command after --/],
    [['exec', '--socket', 's', '--', 'x'], /unknown option '--socket' for exec/],
    [['serve', '--socket', 's', '--idle-exit-ms', '10'], /--idle-exit-ms goes with --until-ranks/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['run', '-n', 'many', '--', 'x'], /-n takes a whole number, not 'many'/],
    [['run', '-n', '0', '--', 'x'], /-n takes 1 to 1024, not 0/],
    // values the shim or the coordinator would refuse are refused here, not passed on
    [['run', '--timeout-ms', '0', '--', 'x'], /--timeout-ms takes 1 to 3600000, not 0/],
    [['run', '--timeout-ms', '99999999', '--', 'x'], /--timeout-ms takes 1 to 3600000, not 99999999/],
    [['run', '--max-registrations', '0', '--', 'x'], /--max-registrations takes 1 to 1048576, not 0/],
    [['exec', '--max-attachments', '5000', '--', 'x'], /--max-attachments takes 1 to 4096, not 5000/],
    // a forgotten value is not a file named --
    [['run', '--trace', '--', 'true'], /--trace needs a value/],
    [['run', '--metrics', 'localhost:http', '--', 'x'], /--metrics takes HOST:PORT or PORT \(a port from 0 to 65535; 0: the system chooses\), not 'localhost:http'/],
    [['status', '--interval-ms', '500'], /--interval-ms goes with --watch/],
    [['report', 't.jsonl'], /report needs -o FILE.html/],
    [['report', '-o', 'r.html'], /report needs at least one trace file/],
    [['help', 'frobnicate'], /help takes one of run, serve, exec, audit, status, report, help, version, trace/],
    [['run', '--mremap', 'sideways', '--', 'x'], /--mremap takes invalidate or follow/],
    [['run', '--free', 'always', '--', 'x'], /--free takes keep or invalidate, not 'always'/],
    [['run', '-n', '2'], /run needs a command/],
    [['run', '--socket', 'x', '--', 'y'], /unknown option '--socket' for run/],
    [['serve'], /serve needs --socket PATH/],
    [['serve', '--socket'], /--socket needs a value/],
  ])('%j is a usage error naming the problem', (args, msg) => {
    expect(() => parseCli(args)).toThrow(msg);
  });

  it('reads the limits for run and serve, and refuses a frame limit below 256', () => {
    expect(parseCli(['serve', '--socket', 's', '--max-names', '3', '--max-pending', '2', '--max-frame', '1024'])).toMatchObject({ maxNames: 3, maxPending: 2, maxFrame: 1024 });
    expect(parseCli(['run', '--max-registrations', '10', '--max-attachments', '5', '--', 'x'])).toMatchObject({ maxRegistrations: 10, maxAttachments: 5 });
    expect(() => parseCli(['serve', '--socket', 's', '--max-frame', '100'])).toThrow(/--max-frame takes 256 to 16777216, not 100/);
  });

  it('help in its usual spellings, for one command too, and the version', () => {
    for (const a of [[], ['help'], ['--help'], ['-h']]) expect(parseCli(a)).toEqual({ command: 'help' });
    for (const a of [['help', 'run'], ['run', '--help'], ['run', '-n', '2', '-h']]) expect(parseCli(a)).toEqual({ command: 'help', topic: 'run' });
    expect(parseCli(['help', 'trace'])).toEqual({ command: 'help', topic: 'trace' });
    for (const a of [['--version'], ['-V'], ['-v'], ['version']]) expect(parseCli(a)).toEqual({ command: 'version' });
  });

  it('reads --metrics as HOST:PORT, loopback when only a port is given; exec passes it on to its coordinator', () => {
    expect(parseCli(['run', '--metrics', '9464', '--', 'x'])).toMatchObject({ metrics: { host: '127.0.0.1', port: 9464 } });
    expect(parseCli(['serve', '--socket', 's', '--metrics', '0.0.0.0:0'])).toMatchObject({ metrics: { host: '0.0.0.0', port: 0 } });
    expect(parseCli(['serve', '--socket', 's', '--metrics', '[::1]:9464'])).toMatchObject({ metrics: { host: '::1', port: 9464 } });
    expect(parseCli(['exec', '--metrics', ':9464', '--', 'x'])).toMatchObject({ coordinatorArgs: ['--metrics', ':9464'] });
  });

  it('reads status and report', () => {
    expect(parseCli(['status'])).toEqual({ command: 'status', socket: undefined, json: false, watch: false, intervalMs: 1000 });
    expect(parseCli(['status', '--socket', 's', '--json', '--watch', '--interval-ms', '200'])).toEqual({ command: 'status', socket: 's', json: true, watch: true, intervalMs: 200 });
    expect(parseCli(['report', 'a.jsonl', '-o', 'r.html', 'b.jsonl'])).toEqual({ command: 'report', traces: ['a.jsonl', 'b.jsonl'], output: 'r.html' });
  });
});

describe('preloadWith', () => {
  it('puts the shim first, after a sanitizer runtime only', () => {
    expect(preloadWith('/s.so', undefined)).toBe('/s.so');
    expect(preloadWith('/s.so', '/other.so')).toBe('/s.so:/other.so');
    expect(preloadWith('/s.so', '/other.so:/usr/lib/libasan.so.8')).toBe('/usr/lib/libasan.so.8:/s.so:/other.so');
  });
});

describe('pincohEnv: the one place a rank\'s variables are made', () => {
  it('sets what it is told, the shim preloaded first; pincoh run\'s ranks get the same plus our environment', () => {
    expect(pincohEnv('/s.so', '/c.sock', {}, undefined)).toEqual({ LD_PRELOAD: '/s.so', PINCOH_SOCKET: '/c.sock' });
    expect(pincohEnv('/s.so', '/c.sock', { rank: 1, size: 4, job: 'j', globalRank: 5, globalSize: 8, timeoutMs: 300, preload: ['/p.so'] }, '/o.so')).toEqual({
      LD_PRELOAD: '/s.so:/p.so:/o.so',
      PINCOH_SOCKET: '/c.sock',
      PINCOH_RANK: '1',
      PINCOH_SIZE: '4',
      PINCOH_JOB: 'j',
      PINCOH_GLOBAL_RANK: '5',
      PINCOH_GLOBAL_SIZE: '8',
      PINCOH_TIMEOUT_MS: '300',
    });
    const env = rankEnv({ argv: ['x'], ranks: 2, shim: '/s.so', socket: '/c.sock', job: 'j' }, 1);
    expect(env).toMatchObject({ ...pincohEnv('/s.so', '/c.sock', { rank: 1, size: 2, job: 'j' }), PATH: process.env.PATH });
  });
});
