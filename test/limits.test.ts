// Every limit, at its edge: the last one allowed goes through, the next is
// refused with its own errno, and the process that hit it carries on.

import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/protocol/codec.js';
import { HDR_SIZE, SIZE, T } from '../src/protocol/constants.js';
import { encodeAttach } from '../src/protocol/messages.js';
import { CLI, driver, fakeArea, prog, run, startCoordinator, until, type Coordinator } from './helpers.js';
import { EAGAIN, EFAULT, ENOSPC } from '../src/protocol/errno.js';


let c: Coordinator;
beforeAll(async () => (c = await startCoordinator({ limits: { registrationsPerProcess: 3, attachmentsPerProcess: 2, namesPerJob: 2 }, server: { maxPending: 2, maxFrame: 512 } })));
afterAll(async () => c.close());

describe('limits', () => {
  it('registrations per process: the fourth is -ENOSPC', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 r reg 0 4096 4096 r reg 0 8192 4096 r reg 0 12288 4096 r dereg 0 reg 0 12288 4096 r');
    expect(r.lines.filter((l) => l.startsWith('reg'))).toEqual(['reg 0 0', 'reg 1 0', 'reg 2 0', `reg -1 -${ENOSPC}`, 'reg 3 0']);
  });

  it('names per job: the third is -ENOSPC', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 r pub a 0 pub b 0 pub c 0', { PINCOH_JOB: 'names' });
    expect(r.lines.filter((l) => l.startsWith('pub'))).toEqual(['pub 0', 'pub 0', `pub -${ENOSPC}`]);
  });

  it('attachments per process: the third is -ENOSPC', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 rw pub x 0 att x 100 att x 100 att x 100', { PINCOH_JOB: 'atts' });
    expect(r.lines.filter((l) => l.startsWith('att'))).toEqual(['att 0 0', 'att 1 0', `att -1 -${ENOSPC}`]);
  });

  it('requests waiting per connection: the third waiting ATTACH is -EAGAIN at once', async () => {
    const s = createConnection(c.path);
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.write(fakeArea().hello({ argv0: 'pending', job: 'pend' }));
    for (let i = 1; i <= 3; i++) s.write(encodeAttach(BigInt(i), { handle: (1n << 32n) | BigInt(i), timeoutMs: 10_000, name: `missing-${i}` }));
    const welcome = HDR_SIZE + SIZE.WELCOME;
    expect(await until(() => Buffer.concat(got).length >= welcome + 24)).toBe(true);
    const b = Buffer.concat(got); // WELCOME, then the REPLY
    expect(b.readBigUInt64LE(welcome + 8)).toBe(3n); // the third one...
    expect(b.readInt32LE(welcome + 16)).toBe(-EAGAIN); // ...refused, while 1 and 2 still wait
    s.destroy();
  });

  it('frame size: a frame over the limit cuts the sender off', async () => {
    const s = createConnection(c.path);
    const closed = new Promise((r) => s.once('close', r));
    s.on('error', () => {});
    s.on('data', () => {});
    s.write(fakeArea().hello({ argv0: 'big', job: 'big' }));
    s.write(encodeFrame(T.PUBLISH, 0, 1n, Buffer.alloc(600)));
    await closed;
    expect(c.logs.some((l) => /cut off pid \d+ \(big, rank 0\): frame length 616 outside 16..512/.test(l))).toBe(true);
  });

  it('publishing memory the caller does not have is -EFAULT', async () => {
    // (the first registration reserves the shim's table, so the hole made after it stays a hole)
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 r unmap 0 32768 32768 reg 0 32768 4096 rw prot 0 8192 4096 none reg 0 4096 8192 r pub a 1 pub b 2 pub c 0', { PINCOH_JOB: 'efault' });
    expect(r.lines.filter((l) => l.startsWith('pub'))).toEqual([`pub -${EFAULT}`, `pub -${EFAULT}`, 'pub 0']);
  });

  it('the limits are flags of pincoh run', async () => {
    const r = await run(process.execPath, [CLI, 'run', '--max-registrations', '1', '--', prog('driver'), 'map', '0', '8192', 'reg', '0', '0', '4096', 'r', 'reg', '0', '4096', '4096', 'r']);
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', `reg -1 -${ENOSPC}`]);
  });
});
