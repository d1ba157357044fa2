// The README is the front door and docs/ holds one topic a page: every relative
// link and #anchor in README.md and docs/*.md must lead somewhere, every page
// must be reachable from the README and lead back to it, and the README must
// stay short. No processes: the files are read and checked as text.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The text outside fenced code blocks, line for line (fenced lines become empty). */
function prose(text: string): string[] {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]![0]!;
      else if (m[1]![0] === fence) fence = undefined;
      return '';
    }
    return fence === undefined ? line : '';
  });
}

/** GitHub's anchor for a heading: its text, lower case, without punctuation, spaces as hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
}

/** Every anchor a markdown text defines, duplicates numbered as GitHub does (x, x-1, x-2). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

interface Broken {
  file: string;
  line: number;
  target: string;
  why: string;
}

/** The relative links and anchors of `files` (name -> text) that lead nowhere. Names are paths
 * relative to the repository; a target is looked up among `files` first, then on disk under ROOT. */
function brokenLinks(files: Map<string, string>, root = ROOT): Broken[] {
  const broken: Broken[] = [];
  const textOf = (name: string): string | undefined => {
    if (files.has(name)) return files.get(name);
    const p = join(root, name);
    return existsSync(p) && statSync(p).isFile() ? readFileSync(p, 'utf8') : undefined;
  };
  for (const [file, text] of files) {
    // code spans hold no links; a link's text may run over two lines
    const body = prose(text)
      .map((line) => line.replace(/`[^`]*`/g, '``'))
      .join('\n');
    for (const m of body.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const name = path === '' ? file : relative(root, resolve(root, dirname(file), path));
      const at = { file, line: body.slice(0, m.index).split('\n').length, target };
      if (name.startsWith('..')) {
        broken.push({ ...at, why: 'leads out of the repository' });
        continue;
      }
      const isDir = path !== '' && existsSync(join(root, name)) && statSync(join(root, name)).isDirectory();
      const targetText = isDir ? '' : textOf(name);
      if (targetText === undefined) broken.push({ ...at, why: `no file ${name}` });
      else if (anchor && !name.endsWith('.md')) broken.push({ ...at, why: `an anchor into ${name}, which has no headings` });
      else if (anchor && !anchors(targetText).has(anchor)) broken.push({ ...at, why: `no heading #${anchor} in ${name}` });
    }
  }
  return broken;
}

const pages = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);
const files = new Map<string, string>([['README.md', readFileSync(join(ROOT, 'README.md'), 'utf8')], ...pages.map((p) => [p, readFileSync(join(ROOT, p), 'utf8')] as [string, string])]);

describe('README.md and docs/', () => {
  it('have no relative link or anchor that leads nowhere', () => {
    expect(pages.length).toBeGreaterThan(0);
    expect(brokenLinks(files).map((b) => `${b.file}:${b.line}: (${b.target}) ${b.why}`)).toEqual([]);
  });

  it('link each docs page from the README, and each page back to the README near its top', () => {
    const readme = files.get('README.md')!;
    for (const p of pages) {
      expect(readme.includes(`](${p})`), `README.md links ${p}`).toBe(true);
      const top = files.get(p)!.split('\n').slice(0, 5).join('\n');
      expect(/^# \S/.test(top), `${p} starts with a title`).toBe(true);
      expect(top.includes('](../README.md)'), `${p} links back to the README`).toBe(true);
    }
  });

  it('keep the README a front door: at most 400 lines, and npm test is its test command', () => {
    const readme = files.get('README.md')!;
    expect(readme.split('\n').length).toBeLessThanOrEqual(400);
    expect(/```sh\nnpm test\n```/.test(readme), 'README.md shows npm test').toBe(true);
  });
});

describe('the link check itself', () => {
  const good = '# Title\n\n## Two words: `code` here\n\n## Two words: `code` here\n\nsee [x](#title)\n';
  it('accepts links to headings that exist, duplicates numbered', () => {
    const f = new Map([
      ['README.md', '[a](docs/a.md#two-words-code-here-1) [b](docs/a.md) [c](https://example.org/x#y) `[d](nowhere.md)`\n```\n[e](nowhere.md)\n```\n'],
      ['docs/a.md', good],
    ]);
    expect(brokenLinks(f)).toEqual([]);
  });

  it('finds a link to a missing file, a missing anchor, and a path out of the tree', () => {
    const f = new Map([
      ['README.md', 'see [a](docs/missing.md) and [b](docs/a.md#no-such-heading)\n'],
      ['docs/a.md', `${good}[c](../../etc/passwd) [d](#two-words-code-here-2) [e\nf](#nowhere)\n`],
    ]);
    expect(brokenLinks(f).map((b) => `${b.file}:${b.line}: ${b.why}`)).toEqual([
      'README.md:1: no file docs/missing.md',
      'README.md:1: no heading #no-such-heading in docs/a.md',
      'docs/a.md:8: leads out of the repository',
      'docs/a.md:8: no heading #two-words-code-here-2 in docs/a.md',
      'docs/a.md:8: no heading #nowhere in docs/a.md',
    ]);
  });
});
