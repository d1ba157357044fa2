// The coordinator dies and comes back: nobody hangs, registrations are marked
// unknown once the process finds out (its next request: nothing listens to
// the socket) and re-announced on the next need, attachments die at once.

import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { T } from '../src/protocol/constants.js';
import { encodeWelcome } from '../src/protocol/messages.js';
import { serve, startDriver, until, tempDir } from './helpers.js';
import { ENOTCONN, ESTALE } from '../src/protocol/errno.js';


describe('the coordinator is killed and restarted', () => {
  it('calls go on locally, registrations are unknown, then re-announced on the next need', async () => {
    const sock = join(tempDir('restart'), 'c.sock');
    const first = serve(sock);
    expect(await first.ready).toBe(true);
    const d = startDriver(sock, 'cb map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw wait unmap 0 0 4096 valid 0 valid 1 bar 100 valid 1 stats wait map 1 4096 reg 1 0 4096 rw valid 1 valid 2 stats', { PINCOH_TIMEOUT_MS: '30000' });
    await d.waitFor(/^waiting/);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    d.send();
    await d.waitFor(/^stats/);
    // munmap went on without a coordinator and at once, invalidating locally; the
    // barrier's request found it gone (and found no new one to retry with)
    expect(d.lines.slice(4, 11)).toEqual(['cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0', 'valid 1 1', `bar -${ENOTCONN}`, 'valid 1 2', 'stats slow 1 inval 1 timeouts 0 degraded 1 connected 0']);

    const second = serve(sock); // the same socket path: the stale socket is replaced
    expect(await second.ready).toBe(true);
    d.send();
    const r = await d.done;
    // (then, at exit, the two left go: reason 7)
    expect(r.lines.slice(-6)).toEqual(['reg 2 0', 'valid 1 1', 'valid 2 1', 'stats slow 1 inval 1 timeouts 0 degraded 1 connected 1', 'cb 2 reason 7 len 4096', 'cb 1 reason 7 len 4096']);
    expect(r.stderr).toMatch(/re-announced registrations: 1/);
    // the new coordinator heard of the surviving registration (key 2) before the new one (key 3)
    const registered = () => second.out().split('\n').filter((l) => l.includes('"event":"register"')).map((l) => JSON.parse(l).key);
    await until(() => second.out().includes('"event":"gone"')); // its ring is read to the end when it has gone
    expect(registered()).toEqual([2, 3]);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });

  it('a request finding the coordinator restarted reconnects and goes through', async () => {
    const sock = join(tempDir('retry'), 'c.sock');
    const first = serve(sock);
    expect(await first.ready).toBe(true);
    const d = startDriver(sock, 'map 0 65536 reg 0 0 4096 rw wait pub late 0 valid 0 stats', { PINCOH_TIMEOUT_MS: '30000' });
    await d.waitFor(/^waiting/);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const second = serve(sock);
    expect(await second.ready).toBe(true);
    d.send();
    const r = await d.done;
    expect(r.lines.slice(-3)).toEqual(['pub 0', 'valid 0 1', 'stats slow 0 inval 0 timeouts 0 degraded 1 connected 1']);
    expect(second.out()).toMatch(/"event":"publish".*"name":"late"/);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });

  it('a call waiting for the coordinator (a SYNC for a full ring) returns as soon as it dies, not after the timeout', async () => {
    const path = join(tempDir('die'), 's');
    const conns: Socket[] = [];
    let begun = false;
    const server = createServer((s) => {
      conns.push(s);
      s.on('error', () => {});
      s.on('data', (d) => {
        for (let at = 0; at + 16 <= d.length; at += d.readUInt32LE(at)) {
          const type = d.readUInt16LE(at + 4);
          if (type === T.HELLO) s.write(encodeWelcome(0, 0));
          else if (type === T.SYNC) begun = true; // and never answer: it never drains either
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    // the 4,097th event finds the ring full and waits for a drain
    const d = startDriver(path, 'map 0 20480000 regmany 0 5000 stats', { PINCOH_TIMEOUT_MS: '60000' });
    expect(await until(() => begun)).toBe(true);
    server.close(); // nobody there to reconnect to
    conns.forEach((s) => s.destroy()); // the coordinator "dies" mid-call
    const r = await d.done;
    expect(r.code).toBe(0);
    expect(r.lines.pop()).toBe('stats slow 0 inval 0 timeouts 0 degraded 1 connected 0'); // ended by the loss, not the timeout
  });

  it('killed while an attacher is stopped: what was revoked before stays revoked in its memory', async () => {
    const sock = join(tempDir('fan'), 'c.sock');
    const s = serve(sock);
    expect(await s.ready).toBe(true);
    const owner = startDriver(sock, 'cb map 0 65536 reg 0 0 65536 rw pub f 0 wait unmap 0 0 65536 valid 0 stats wait', { PINCOH_TIMEOUT_MS: '60000' });
    await owner.waitFor(/^waiting/);
    const a = startDriver(sock, 'att f 5000 put 0 0 8 1 stop put 0 0 8 1');
    await a.waitFor(/^stopping/);
    await until(() => false, 50);
    owner.send(); // its munmap waits for the coordinator only, never for the stopped attacher
    await owner.waitFor(/^stats/);
    expect(owner.lines.slice(-3, -1)).toEqual(['valid 0 0', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
    s.child.kill('SIGKILL');
    await new Promise((r) => s.child.once('exit', r));
    process.kill(a.pid, 'SIGCONT');
    expect((await a.done).lines.slice(-2)).toEqual(['continued', `put -${ESTALE}`]);
    owner.send();
    await owner.done;
  });

  it('attachments die with the coordinator: a put afterwards is -ESTALE', async () => {
    const sock = join(tempDir('att'), 'c.sock');
    const s = serve(sock);
    expect(await s.ready).toBe(true);
    const owner = startDriver(sock, 'map 0 65536 reg 0 0 65536 rw pub x 0 wait');
    await owner.waitFor(/^waiting/);
    const a = startDriver(sock, 'att x 5000 put 0 0 8 1 wait put 0 0 8 1');
    await a.waitFor(/^waiting/);
    s.child.kill('SIGKILL');
    await new Promise((r) => s.child.once('exit', r));
    await until(() => false, 100);
    a.send();
    expect((await a.done).lines.pop()).toBe(`put -${ESTALE}`);
    owner.send();
    await owner.done;
  });
});
