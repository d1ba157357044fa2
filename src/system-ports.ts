// The engine's ports to the real system (src/coherence/ports.ts): job tables
// in sealed memfds, other processes' memory through /proc and
// process_vm_readv, their lives through /proc and kill(2) (job/ended.ts).

import type { EnginePorts, MemoryPort } from './coherence/ports.js';
import { systemProcesses } from './job/ended.js';
import { audit, readMaps } from './memory/maps.js';
import { isMapped } from './memory/remote.js';
import { JobTable } from './transport/jobtable.js';

export const systemMemory: MemoryPort = {
  isMapped,
  audit: (pid, regs) => {
    const maps = readMaps(pid);
    return maps && audit(regs, maps);
  },
};

export const systemPorts = (): EnginePorts => ({ tables: JobTable.create, memory: systemMemory, lives: systemProcesses });
