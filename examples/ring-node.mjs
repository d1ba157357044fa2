// ring-node: a Node rank of examples/ring.c's ring, through koffi. Same
// names, same message bytes, same barriers: C and Node ranks mix in one job.
//
//   npx pincoh run -n 4 -- sh -c 'if [ $((PINCOH_RANK % 2)) = 1 ]; then exec node examples/ring-node.mjs; else exec examples/bin/ring; fi'

import { Pincoh } from '../dist/binding/ffi.js';

const MSG = 4096;
const iters = Number(process.argv[2] ?? 500);
const byteOf = (from, it, i) => (from * 31 + it * 7 + i) & 0xff;

const p = new Pincoh();
const { rank, size } = p;
const right = (rank + 1) % size;
const left = (rank + size - 1) % size;

const recv = p.alloc(2 * MSG);
p.publish(`ring/${rank}`, p.register(recv));
const h = p.attach(`ring/${right}`, 10000);
p.barrier(10000);

const msg = new Uint8Array(MSG);
let bad = 0;
for (let it = 0; it < iters; it++) {
  const slot = (it & 1) * MSG;
  for (let i = 0; i < MSG; i++) msg[i] = byteOf(rank, it, i);
  p.put(h, slot, msg);
  p.barrier(10000);
  for (let i = 0; i < MSG; i++)
    if (recv.bytes[slot + i] !== byteOf(left, it, i)) {
      bad++;
      break;
    }
}
p.barrier(10000);
console.log(`rank ${rank} of ${size} (node): ${iters} iterations from rank ${left}, ${bad} bad`);
process.exitCode = bad ? 1 : 0;
