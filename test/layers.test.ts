// The shim's modules call one another in layers, never up and never round in
// a circle. The graph of calls is read from the object files `make -C
// native-shim` links the library from (native-shim/build/obj, one per
// module): a module calls another when nm says it needs (U) a symbol the other
// defines; functions and data alike, libc's symbols ignored. It is checked
// against the layer order shim.h documents, and two controls show the check
// fails and names the edge: the real graph with one call added that points
// up, and three tiny objects that call one another round a circle.
// (src/'s import graph has its own check: test/import-graph.test.ts.)

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stronglyConnected, tempDir } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const SHIM = resolve(ROOT, 'native-shim');
const SRC = resolve(SHIM, 'src');
const OBJ = resolve(SHIM, 'build/obj');

/** from -> to -> the symbols from needs of to */
type Graph = Map<string, Map<string, string[]>>;

/** Defined and undefined global symbols of one object, from nm's output. */
function symbols(nmOut: string): { defined: Set<string>; needed: Set<string> } {
  const defined = new Set<string>();
  const needed = new Set<string>();
  for (const line of nmOut.split('\n')) {
    const m = line.match(/^(?:[0-9a-f]+)?\s+([A-Za-z?])\s+(\S+)$/);
    if (!m) continue;
    if (m[1] === 'U') needed.add(m[2]!);
    else if (/[A-Z]/.test(m[1]!)) defined.add(m[2]!); // lower case: local (static), or weak undefined
  }
  return { defined, needed };
}

/** The graph of modules, given each module's nm output. */
function graphOf(nm: Map<string, string>): Graph {
  const syms = new Map([...nm].map(([mod, out]) => [mod, symbols(out)]));
  const owner = new Map<string, string>();
  for (const [mod, s] of syms) for (const sym of s.defined) owner.set(sym, mod);
  const g: Graph = new Map([...syms.keys()].map((m) => [m, new Map()]));
  for (const [mod, s] of syms)
    for (const sym of [...s.needed].sort()) {
      const to = owner.get(sym);
      if (!to || to === mod) continue; // libc's, or its own
      const out = g.get(mod)!;
      out.set(to, [...(out.get(to) ?? []), sym]);
    }
  return g;
}

/** shim.h's layers, top first: each a list of names ("hooks/" a directory, "arch-*" a prefix). */
function layersOf(shimH: string): string[][] {
  const at = shimH.indexOf('Layers, top to bottom');
  if (at < 0) throw new Error('shim.h has no "Layers, top to bottom" block');
  const block = shimH.slice(at, shimH.indexOf('*/', at));
  const layers: string[][] = [];
  for (const line of block.split('\n')) {
    const m = line.match(/^ \*   (\S.*)$/); // three spaces in: a layer; the description after two spaces or more
    if (m) layers.push(m[1]!.split(/\s{2,}/)[0]!.split(' '));
  }
  return layers;
}

function matches(name: string, mod: string): boolean {
  if (name.endsWith('/')) return mod.startsWith(name);
  if (name.endsWith('*')) return mod.startsWith(name.slice(0, -1));
  return mod === name;
}

/** Everything wrong with g against layers: each message names the modules, and the symbols of each edge. */
function violations(g: Graph, layers: string[][]): string[] {
  const problems: string[] = [];
  const level = new Map<string, number>();
  for (const mod of g.keys()) {
    const at = layers.flatMap((names, i) => (names.some((n) => matches(n, mod)) ? [i] : []));
    if (at.length !== 1) problems.push(`${mod} is on ${at.length} lines of shim.h's layers (it must be on one)`);
    else level.set(mod, at[0]!);
  }
  for (const names of layers)
    for (const n of names)
      if (![...g.keys()].some((mod) => matches(n, mod))) problems.push(`shim.h's layers name ${n}, which is no module`);
  for (const [from, out] of g)
    for (const [to, syms] of out) {
      const a = level.get(from);
      const b = level.get(to);
      if (a !== undefined && b !== undefined && b < a)
        problems.push(`${from} -> ${to} (${syms.join(', ')}) points up: ${to} is on a higher line of shim.h's layers than ${from}`);
    }
  for (const c of stronglyConnected(new Map([...g].map(([m, out]) => [m, out.keys()]))))
    if (c.length > 1) {
      const inside = c.flatMap((from) => [...g.get(from)!].filter(([to]) => c.includes(to)).map(([to, syms]) => `${from} -> ${to} (${syms.join(', ')})`));
      problems.push(`a circle of ${c.length} modules: ${inside.join('; ')}`);
    }
  return problems;
}

/** Every C source of the shim, as a module name: api, hooks/munmap... */
function modules(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : f.endsWith('.c') ? [relative(SRC, p).slice(0, -2)] : [];
    });
  return walk(SRC).sort();
}

const nm = (obj: string) => execFileSync('nm', [obj], { encoding: 'utf8' });

describe('the shim: calls between modules point down shim.h\'s layers, with no circle', () => {
  let graph: Graph;
  let layers: string[][];

  beforeAll(() => {
    // up to date already after `npm run build`; this builds only the objects, never the libraries
    execFileSync('make', ['-s', '-C', SHIM, 'objs'], { stdio: ['ignore', 'ignore', 'inherit'] });
    graph = graphOf(new Map(modules().map((m) => [m, nm(join(OBJ, `${m}.o`))])));
    layers = layersOf(readFileSync(join(SRC, 'shim.h'), 'utf8'));
  }, 180_000);

  it('reads a graph: every module, and the calls it is made of', () => {
    expect([...graph.keys()]).toEqual(modules());
    expect(layers.length).toBeGreaterThan(5);
    // calls that must be there, whatever else changes: a hook into the slow path, the slow path into the table
    expect(graph.get('hooks/munmap')!.get('slowpath')).toContain('pc_slow_call');
    expect(graph.get('slowpath')!.get('table')).toContain('pc_table_apply');
  });

  it('has no circle and no call up the layers', () => {
    expect(violations(graph, layers)).toEqual([]);
  });

  it('control: the same graph with one call added up the layers fails, naming it', () => {
    const bad: Graph = new Map([...graph].map(([m, out]) => [m, new Map(out)]));
    bad.get('table')!.set('slowpath', ['pc_slow_call']);
    const problems = violations(bad, layers);
    expect(problems).toContain("table -> slowpath (pc_slow_call) points up: slowpath is on a higher line of shim.h's layers than table");
    expect(problems.find((p) => p.startsWith('a circle of'))).toMatch(/table -> slowpath \(pc_slow_call\)/);
  });

  it('control: three tiny objects, two calling each other and one calling up, fail with both named', () => {
    const dir = tempDir('layers');
    const src: Record<string, string> = {
      top: 'void low(void); void top(void) { low(); }\n',
      low: 'void mid(void); void low(void) { mid(); }\n', // low -> mid: up
      mid: 'void low(void); int mid_data; void mid(void) { low(); }\n', // mid -> low -> mid: a circle
    };
    const objs = new Map<string, string>();
    for (const [name, text] of Object.entries(src)) {
      writeFileSync(join(dir, `${name}.c`), text);
      execFileSync('gcc', ['-c', '-o', join(dir, `${name}.o`), join(dir, `${name}.c`)]);
      objs.set(name, nm(join(dir, `${name}.o`)));
    }
    const g = graphOf(objs);
    expect([...g.get('top')!]).toEqual([['low', ['low']]]);
    const problems = violations(g, layersOf('/* Layers, top to bottom.\n *\n *   top\n *   mid  the middle\n *   low\n */'));
    expect(problems).toEqual([
      "low -> mid (mid) points up: mid is on a higher line of shim.h's layers than low",
      'a circle of 2 modules: low -> mid (mid); mid -> low (low)',
    ]);
    // and a module shim.h does not place, and a name that is no module
    expect(violations(g, [['top', 'gone'], ['mid', 'low']])).toEqual(expect.arrayContaining([
      "shim.h's layers name gone, which is no module",
    ]));
    expect(violations(g, [['top'], ['low']])).toContain("mid is on 0 lines of shim.h's layers (it must be on one)");
  });
});
