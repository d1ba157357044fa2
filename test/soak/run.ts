// npm run soak [-- PROCS REGS SECONDS]: 64 processes x 1,000 registrations for 10 minutes by default.

import { runSoak, summarize } from './soak.js';

const [procs = 64, regs = 1000, seconds = 600] = process.argv.slice(2).map(Number);
console.log(`soak: ${procs} processes x ${regs} registrations for ${seconds} s`);
const r = await runSoak({ procs, regs, seconds, log: (l) => console.log(l) });
console.log(summarize(r));
const sum = (k: 'missed' | 'stale_writes') => r.ranks.reduce((a, x) => a + x[k], 0);
process.exitCode = sum('missed') || sum('stale_writes') || r.auditFindings || r.ranks.length !== procs ? 1 : 0;
