// The load baseline: a minimal Node server speaking just enough of the
// protocol (WELCOME to HELLO, REPLY to every frame that wants one), with the
// same framing code and no engine. What the coordinator does beyond this is
// its own cost.

import { createServer, type Server } from 'node:net';
import { FrameReader } from '../src/protocol/codec.js';
import { F_NOREPLY, T } from '../src/protocol/constants.js';
import { encodeReply, encodeWelcome } from '../src/protocol/messages.js';

export function echoServer(path: string): Promise<Server> {
  const server = createServer((s) => {
    const reader = new FrameReader();
    const sink = {
      frame(type: number, flags: number, seq: bigint) {
        if (type === T.HELLO) s.write(encodeWelcome(0, 0));
        else if (!(flags & F_NOREPLY)) s.write(encodeReply(seq, 0));
      },
    };
    s.on('data', (d) => reader.push(d, sink));
    s.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}
