import { defineConfig } from 'vitest/config';

const ALL = ['test/**/*.test.ts'];
// Run as root (CI is), the cluster and exec tests run a second time with every
// process they start as an unprivileged user the suite makes (test/user-setup.ts,
// test/helpers.ts: TEST_USER). After the rest (groupOrder): Slurm's fixed ports
// and cgroups allow one test cluster at a time.
const projects =
  process.getuid?.() === 0
    ? [
        { extends: true, test: { name: 'as root', include: ALL } },
        {
          extends: true,
          test: {
            name: 'as a user',
            include: ['test/exec.e2e.test.ts', 'test/cluster.e2e.test.ts', 'test/hydra.e2e.test.ts', 'test/slurm.e2e.test.ts'],
            env: { PINCOH_TEST_USER: 'pincoh-ci' },
            globalSetup: ['test/user-setup.ts'],
            sequence: { groupOrder: 1 },
          },
        },
      ]
    : undefined;

export default defineConfig({
  test: {
    // (the projects' include would be added to the root's: one or the other)
    ...(projects ? { projects } : { include: ALL }),
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // The JSON report is what .ci/run counts from.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
