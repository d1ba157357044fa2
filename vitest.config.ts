import { defineConfig } from 'vitest/config';

// Run as root (CI is), the cluster and exec tests run a second time with every
// process they start as an unprivileged user the suite makes (test/user-setup.ts,
// test/helpers.ts: TEST_USER), after the rest: Slurm's fixed ports allow one cluster at a time.
const asUser = process.getuid?.() === 0;

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // The JSON report is what .ci/run counts from.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      { extends: true, test: { name: asUser ? 'as root' : 'as yourself', include: ['test/**/*.test.ts'] } },
      ...(asUser
        ? [
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
        : []),
    ],
  },
});
