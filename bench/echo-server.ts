// The floor of a Node coordinator: a minimal Node server answering every frame
// with a REPLY, with the same framing code and no engine. bench/pingpong.c
// times it; what the coordinator's SYNC costs beyond it is pincoh's own.

import { createServer, type Server } from 'node:net';
import { FrameReader } from '../src/protocol/codec.js';
import { encodeReply } from '../src/protocol/messages.js';

export function echoServer(path: string): Promise<Server> {
  const server = createServer((s) => {
    const reader = new FrameReader();
    const sink = { frame: (_type: number, _flags: number, seq: bigint) => void s.write(encodeReply(seq, 0)) };
    s.on('data', (d) => reader.push(d, sink));
    s.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}
