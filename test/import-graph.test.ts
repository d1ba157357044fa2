// The coordinator's import graph, from the source: no circles, and the engine
// reaches the world only through the ports it is handed (it imports neither
// memory/ nor transport/, not even through another module).

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, stronglyConnected } from './helpers.js';

type Graph = Map<string, string[]>;

/** Every src/ module and the src/ modules it imports or re-exports from (type-only ones too). */
function importGraph(): Graph {
  const g: Graph = new Map();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(path, 'utf8');
        const deps = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => relative(ROOT, resolve(dirname(path), m[1]!.replace(/\.js$/, '.ts'))));
        g.set(relative(ROOT, path), [...new Set(deps)]);
      }
    }
  };
  walk(resolve(ROOT, 'src'));
  return g;
}

/** The strongly connected groups of more than one module, and modules that import themselves. */
function circles(g: Graph): string[][] {
  return stronglyConnected(g).filter((c) => c.length > 1 || g.get(c[0]!)?.includes(c[0]!));
}

function reach(g: Graph, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length) for (const d of g.get(todo.pop()!) ?? []) if (!seen.has(d) && (seen.add(d), true)) todo.push(d);
  return seen;
}

describe('the coordinator\'s import graph', () => {
  const g = importGraph();

  it('is read from the source: the engine, the server and the coordinator are in it', () => {
    for (const m of ['src/coherence/engine.ts', 'src/transport/server.ts', 'src/coordinator.ts']) expect(g.has(m), m).toBe(true);
    expect(g.get('src/transport/server.ts')).toContain('src/coherence/engine.ts');
  });

  it('has no circles (control: one edge added back from job/jobs.ts to the engine makes one)', () => {
    expect(circles(g)).toEqual([]);
    const control: Graph = new Map(g);
    control.set('src/job/jobs.ts', [...g.get('src/job/jobs.ts')!, 'src/coherence/engine.ts']);
    // the engine's parts reach job/jobs.ts (through process.ts) and the engine reaches them: they join the circle
    expect(circles(control)).toEqual([['src/coherence/engine.ts', 'src/coherence/lifecycle.ts', 'src/coherence/process.ts', 'src/coherence/revocation.ts', 'src/job/jobs.ts']]);
  });

  it('the engine\'s parts point one way: the engine imports them, they never import the engine (control: an edge back makes a circle)', () => {
    const parts = ['src/coherence/process.ts', 'src/coherence/revocation.ts', 'src/coherence/lifecycle.ts'];
    for (const m of parts) {
      expect(g.get('src/coherence/engine.ts'), m).toContain(m);
      expect(reach(g, m).has('src/coherence/engine.ts'), m).toBe(false);
    }
    // among the parts, one way too: lifecycle -> revocation -> process (the shared data, which imports no part)
    const among = (m: string) => g.get(m)!.filter((d) => parts.includes(d)).sort();
    expect(among('src/coherence/process.ts')).toEqual([]);
    expect(among('src/coherence/revocation.ts')).toEqual(['src/coherence/process.ts']);
    expect(among('src/coherence/lifecycle.ts')).toEqual(['src/coherence/process.ts', 'src/coherence/revocation.ts']);
    const control: Graph = new Map(g);
    control.set('src/coherence/revocation.ts', [...g.get('src/coherence/revocation.ts')!, 'src/coherence/engine.ts']);
    expect(circles(control)).toEqual([['src/coherence/engine.ts', 'src/coherence/lifecycle.ts', 'src/coherence/revocation.ts']]);
  });

  it('the engine reaches neither memory/ nor transport/ (nor koffi\'s libc): it is handed its ports', () => {
    const reached = [...reach(g, 'src/coherence/engine.ts')];
    expect(reached.filter((m) => /^src\/(memory|transport)\/|^src\/libc\.ts$/.test(m))).toEqual([]);
    // control: the server does reach them
    expect([...reach(g, 'src/transport/server.ts')]).toEqual(expect.arrayContaining(['src/memory/remote.ts', 'src/transport/jobtable.ts', 'src/libc.ts']));
  });
});
