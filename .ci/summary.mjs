// Prints vitest's JSON report as the one line CI reads: `N passed, N failed`.
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
for (const f of r.testResults ?? [])
  for (const t of f.assertionResults ?? []) if (t.status === 'failed') console.log(`failed: ${t.fullName}`);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
