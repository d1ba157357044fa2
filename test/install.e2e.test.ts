// pincoh installed as a C library (make install, pkg-config) and the CLI
// installed outside the repository (npm install -g), as a user does it: a real
// install into a temporary prefix, real pkg-config, a real compiler, and the
// programs run under the real CLI.

import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareEnv, itWith, onPath, pincoh, ROOT, run, type RunResult, tempDir } from './helpers.js';

const VERSION = (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SONAME = `libpincoh.so.${VERSION.split('.')[0]}`;
const BUILD = resolve(ROOT, 'native-shim/build');
const SHIM = resolve(BUILD, 'libpincoh.so');

/** pkg-config is a Debian package CI must install; elsewhere the tests that need it say so. */
const itWithPkgConfig = (name: string, fn: () => Promise<void>, timeout?: number): void => itWith(['pkg-config'], 'pkg-config', name, fn, timeout);

/** The environment of a program run outside pincoh: no shim preloaded, no
 * coordinator; and none of the npm_* variables of an `npm test` around us
 * (npm_config_local_prefix would let npx find this checkout's own pincoh). */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = bareEnv();
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k.startsWith('NPM_')) delete env[k];
  delete env.PINCOH_SHIM;
  delete env.LD_LIBRARY_PATH;
  return { ...env, ...extra };
}

async function ok(cmd: string, args: string[], env = plainEnv(), cwd?: string): Promise<RunResult> {
  const r = cwd ? await runIn(cwd, cmd, args, env) : await run(cmd, args, env, 120_000);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stdout}${r.stderr}`);
  return r;
}

/** run(), from another directory. */
async function runIn(cwd: string, cmd: string, args: string[], env = plainEnv()): Promise<RunResult> {
  return run('sh', ['-c', 'cd "$0" && exec "$@"', cwd, cmd, ...args], env, 120_000);
}

/** pincoh with a new user's plain environment unless another is given */
const plainPincoh = (args: string[], env = plainEnv()) => pincoh(args, { env });

/** Registers an mmap'd buffer, munmaps it and says what pincoh did; first, how
 * many copies of the shim (distinct libpincoh files mapped) the process holds,
 * naming them on stderr. Built with PINCOH_WEAK, it links nothing and says so
 * when no shim is there. */
const PROGRAM = String.raw`#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <pincoh.h>

static volatile int fired, why;

static void on_invalidate(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)key, (void)addr, (void)len, (void)ctx;
	fired++;
	why = reason;
}

static int copies(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	unsigned long ino[16];
	int n = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long i;
		char *path = strchr(line, '/');
		if (!path || !strstr(path, "libpincoh") || sscanf(line, "%*s %*s %*s %*s %lu", &i) != 1)
			continue;
		int seen = 0;
		for (int k = 0; k < n; k++)
			seen |= ino[k] == i;
		if (!seen && n < 16) {
			ino[n++] = i;
			fprintf(stderr, "mapped: %s", path);
		}
	}
	if (f)
		fclose(f);
	return n;
}

int main(void)
{
	printf("libpincoh copies: %d\n", copies());
#ifdef PINCOH_WEAK
	if (!&pincoh_register) {
		printf("no shim: running without pincoh\n");
		return 0;
	}
#endif
	size_t len = 1 << 20;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 2;
	memset(buf, 1, len);
	pincoh_on_invalidate(on_invalidate, NULL);
	uint64_t key;
	int r = pincoh_register(buf, len, PINCOH_READ | PINCOH_WRITE, &key);
	if (r == -ENOTCONN) {
		printf("register: -ENOTCONN\n");
		munmap(buf, len);
		printf("invalidated: %d\n", fired);
		return 0;
	}
	printf("register: %d\n", r);
	if (r)
		return 1;
	printf("valid: %d\n", pincoh_is_valid(key));
	munmap(buf, len);
	printf("invalidated: %d, reason munmap: %s\n", fired, why == PINCOH_REASON_MUNMAP ? "yes" : "no");
	printf("valid after munmap: %d\n", pincoh_is_valid(key));
	return 0;
}
`;

const UNDER_PINCOH = 'libpincoh copies: 1\nregister: 0\nvalid: 1\ninvalidated: 1, reason munmap: yes\nvalid after munmap: 0\n';
const WITHOUT_PINCOH = 'libpincoh copies: 1\nregister: -ENOTCONN\ninvalidated: 0\n';
const SUMMARY = (n: number) =>
  new RegExp(`^pincoh: ${n} process(es)? connected, ${n} registrations?, ${n} invalidations? \\(munmap ${n}\\), ${n} calls? on registered memory \\(0 waited for the coordinator\\)`, 'm');

/** The files mapped that the program named on stderr. */
const mapped = (r: RunResult) => [...r.stderr.matchAll(/^mapped: (.*)$/gm)].map((m) => m[1]);

async function soname(lib: string): Promise<string | undefined> {
  const r = await ok('readelf', ['-d', lib]);
  return r.stdout.match(/\(SONAME\)\s+Library soname: \[(.*)\]/)?.[1];
}

/** Builds the program in dir as name, with cc and these flags. */
async function build(dir: string, name: string, flags: string[], cflags: string[] = []): Promise<string> {
  const src = join(dir, 'linked.c');
  if (!existsSync(src)) writeFileSync(src, PROGRAM);
  const out = join(dir, name);
  await ok('cc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', ...cflags, '-o', out, src, ...flags]);
  return out;
}

async function makeInstall(prefix: string, how: 'argument' | 'environment'): Promise<void> {
  if (how === 'argument') await ok('make', ['-s', '-C', resolve(ROOT, 'native-shim'), 'install', `PREFIX=${prefix}`]);
  else await ok('npm', ['run', '-s', 'install-lib'], plainEnv({ PREFIX: prefix }), ROOT);
}

function listTree(dir: string, at = ''): string[] {
  return readdirSync(join(dir, at), { withFileTypes: true }).flatMap((e) => {
    const p = at ? `${at}/${e.name}` : e.name;
    if (e.isDirectory()) return [`${p}/`, ...listTree(dir, p)];
    return [e.isSymbolicLink() ? `${p} -> ${readlinkSync(join(dir, p))}` : p];
  });
}

describe('every build of the shim has the soname', () => {
  it(`readelf -d: SONAME ${SONAME} in build/libpincoh.so, its stub and sanitizer variants, and the aarch64 build where there is one`, async () => {
    const libs = ['libpincoh.so', 'libpincoh-stub.so', 'libpincoh-asan.so', 'libpincoh-tsan.so'].map((l) => resolve(BUILD, l));
    if (onPath('aarch64-linux-gnu-gcc')) libs.push(resolve(BUILD, 'aarch64/libpincoh.so'));
    for (const lib of libs) expect([lib, await soname(lib)]).toEqual([lib, SONAME]);
    // and the soname's file, for a program linked against the tree
    expect(readlinkSync(resolve(BUILD, SONAME))).toBe('libpincoh.so');
  });
});

describe('make install', () => {
  itWithPkgConfig('installs the library, its links, the header, pincoh.pc and pincoh-exec under PREFIX; uninstall removes them', async () => {
    const prefix = join(tempDir('install'), 'prefix');
    await makeInstall(prefix, 'argument');
    expect(listTree(prefix).sort()).toEqual(
      [
        'bin/',
        'bin/pincoh-exec',
        'include/',
        'include/pincoh.h',
        'lib/',
        `lib/libpincoh.so -> ${SONAME}`,
        `lib/libpincoh.so.${VERSION}`,
        `lib/${SONAME} -> libpincoh.so.${VERSION}`,
        'lib/pkgconfig/',
        'lib/pkgconfig/pincoh.pc',
      ].sort(),
    );
    expect(lstatSync(join(prefix, `lib/libpincoh.so.${VERSION}`)).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(prefix, 'bin/pincoh-exec')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(prefix, 'bin/pincoh-exec'))).toEqual(readFileSync(resolve(ROOT, 'native-shim/build/pincoh-exec')));
    expect(readFileSync(join(prefix, `lib/libpincoh.so.${VERSION}`))).toEqual(readFileSync(SHIM));
    expect(await soname(join(prefix, `lib/libpincoh.so.${VERSION}`))).toBe(SONAME);
    expect(readFileSync(join(prefix, 'include/pincoh.h'), 'utf8')).toBe(readFileSync(resolve(ROOT, 'native-shim/include/pincoh.h'), 'utf8'));

    const pc = plainEnv({ PKG_CONFIG_PATH: join(prefix, 'lib/pkgconfig') });
    expect((await ok('pkg-config', ['--modversion', 'pincoh'], pc)).stdout).toBe(`${VERSION}\n`);
    expect((await ok('pkg-config', ['--cflags', '--libs', 'pincoh'], pc)).stdout.trim()).toBe(
      `-I${prefix}/include -L${prefix}/lib -Wl,-rpath,${prefix}/lib -lpincoh`,
    );

    await ok('make', ['-s', '-C', resolve(ROOT, 'native-shim'), 'uninstall', `PREFIX=${prefix}`]);
    expect(listTree(prefix).sort()).toEqual(['bin/', 'include/', 'lib/', 'lib/pkgconfig/']);
  });

  it('DESTDIR stages the install; pincoh.pc names the final prefix, without an rpath in the directories the loader searches anyway', async () => {
    const stage = tempDir('install-stage');
    await ok('make', ['-s', '-C', resolve(ROOT, 'native-shim'), 'install', `DESTDIR=${stage}`, 'PREFIX=/opt/pincoh']);
    const opt = readFileSync(join(stage, 'opt/pincoh/lib/pkgconfig/pincoh.pc'), 'utf8');
    expect(opt).toMatch(/^prefix=\/opt\/pincoh$/m);
    expect(opt).toMatch(/^Libs: -L\$\{libdir\} -Wl,-rpath,\$\{libdir\} -lpincoh$/m);
    expect(readlinkSync(join(stage, `opt/pincoh/lib/${SONAME}`))).toBe(`libpincoh.so.${VERSION}`);

    await ok('make', ['-s', '-C', resolve(ROOT, 'native-shim'), 'install', `DESTDIR=${stage}`, 'PREFIX=/usr']);
    const usr = readFileSync(join(stage, 'usr/lib/pkgconfig/pincoh.pc'), 'utf8');
    expect(usr).toMatch(/^Libs: -L\$\{libdir\} -lpincoh$/m);
  });
});

describe('a program linked with pkg-config against the installed library', () => {
  itWithPkgConfig('runs under pincoh run with ONE copy of the shim (the preloaded one), and on its own without a coordinator', async () => {
    const dir = tempDir('install-link');
    const prefix = join(dir, 'prefix');
    await makeInstall(prefix, 'environment'); // PREFIX=... npm run install-lib
    const flags = (await ok('pkg-config', ['--cflags', '--libs', 'pincoh'], plainEnv({ PKG_CONFIG_PATH: join(prefix, 'lib/pkgconfig') }))).stdout.trim().split(/\s+/);
    const prog = await build(dir, 'linked', flags);
    const dyn = (await ok('readelf', ['-d', prog])).stdout;
    expect(dyn).toContain(`Shared library: [${SONAME}]`);

    // Under pincoh run: DT_NEEDED libpincoh.so.0 is the preloaded build/libpincoh.so.
    const one = await plainPincoh(['run', '--', prog]);
    expect(one.stdout).toBe(UNDER_PINCOH);
    expect(mapped(one)).toEqual([SHIM]);
    expect(one.stderr).toMatch(SUMMARY(1));
    expect(one.code).toBe(0);

    const two = await plainPincoh(['run', '-n', '2', '--', prog]);
    expect(two.stdout).toBe(UNDER_PINCOH.repeat(2));
    expect(mapped(two)).toEqual([SHIM, SHIM]);
    expect(two.stderr).toMatch(SUMMARY(2));
    expect(two.code).toBe(0);

    // Without pincoh run: the installed library (found through the rpath) passes calls through.
    const alone = await run(prog, [], plainEnv());
    expect(alone.stdout).toBe(WITHOUT_PINCOH);
    expect(mapped(alone)).toEqual([join(prefix, `lib/libpincoh.so.${VERSION}`)]);
    expect(alone.code).toBe(0);
  });

  itWithPkgConfig('the one copy comes from the soname: a shim built without one, preloaded, leaves the installed one loaded beside it', async () => {
    const dir = tempDir('install-nosoname');
    const prefix = join(dir, 'prefix');
    await makeInstall(prefix, 'argument');
    const flags = (await ok('pkg-config', ['--cflags', '--libs', 'pincoh'], plainEnv({ PKG_CONFIG_PATH: join(prefix, 'lib/pkgconfig') }))).stdout.trim().split(/\s+/);
    const prog = await build(dir, 'linked', flags);
    const b = join(dir, 'nosoname');
    await ok('make', ['-s', '-C', resolve(ROOT, 'native-shim'), `B=${b}`, 'LDSONAME=', `${b}/libpincoh.so`]);
    expect(await soname(`${b}/libpincoh.so`)).toBeUndefined();
    const r = await plainPincoh(['run', '--', prog], plainEnv({ PINCOH_SHIM: `${b}/libpincoh.so` }));
    expect(r.stdout).toMatch(/^libpincoh copies: 2\n/);
    expect(mapped(r).sort()).toEqual([`${b}/libpincoh.so`, join(prefix, `lib/libpincoh.so.${VERSION}`)].sort());
  }, 120_000);
});

describe('the Node binding in a program that preloads the installed library', () => {
  it('uses that library (libpincoh.so.0.1.0, a versioned name), not a second copy of the tree\'s', async () => {
    const dir = tempDir('install-node');
    const prefix = join(dir, 'prefix');
    await makeInstall(prefix, 'argument');
    const script = join(dir, 'bind.mjs');
    // PINCOH_SHIM names the installed file for pincoh run; the binding must find it mapped, not by that name
    writeFileSync(script, `delete process.env.PINCOH_SHIM;
const { Pincoh } = await import(${JSON.stringify(join(ROOT, 'dist/binding/ffi.js'))});
const p = new Pincoh();
const key = p.register(p.alloc(4096));
console.log('registered', typeof key, p.stats().connected);
`);
    const r = await plainPincoh(['run', '--', process.execPath, script], plainEnv({ PINCOH_SHIM: join(prefix, `lib/${SONAME}`) }));
    expect(r.stdout).toBe('registered bigint true\n');
    expect(r.code).toBe(0);
  });
});

describe('a program built against the tree, without installing', () => {
  it('-Lnative-shim/build -Wl,-rpath,<it> -lpincoh: one copy under pincoh run, and runs on its own', async () => {
    const dir = tempDir('install-tree');
    const prog = await build(dir, 'linked', [`-I${resolve(ROOT, 'native-shim/include')}`, `-L${BUILD}`, `-Wl,-rpath,${BUILD}`, '-lpincoh']);
    const under = await plainPincoh(['run', '--', prog]);
    expect([under.stdout, mapped(under), under.code]).toEqual([UNDER_PINCOH, [SHIM], 0]);
    const alone = await run(prog, [], plainEnv());
    expect([alone.stdout, mapped(alone), alone.code]).toEqual([WITHOUT_PINCOH, [SHIM], 0]);
  });

  it('-lpincoh without an rpath runs under pincoh run (the preloaded shim answers the soname) but does not start on its own', async () => {
    const dir = tempDir('install-norpath');
    const prog = await build(dir, 'linked', [`-I${resolve(ROOT, 'native-shim/include')}`, `-L${BUILD}`, '-lpincoh']);
    const under = await plainPincoh(['run', '--', prog]);
    expect([under.stdout, mapped(under), under.code]).toEqual([UNDER_PINCOH, [SHIM], 0]);
    const alone = await run(prog, [], plainEnv());
    expect(alone.stderr).toContain(`${SONAME}: cannot open shared object file`);
    expect(alone.code).toBe(127);
  });

  it('PINCOH_WEAK, linking nothing: the preloaded shim under pincoh run; no shim at all on its own', async () => {
    const dir = tempDir('install-weak');
    const prog = await build(dir, 'weak', [`-I${resolve(ROOT, 'native-shim/include')}`], ['-DPINCOH_WEAK']);
    expect((await ok('readelf', ['-d', prog])).stdout).not.toContain('libpincoh');
    const under = await plainPincoh(['run', '--', prog]);
    expect([under.stdout, mapped(under), under.code]).toEqual([UNDER_PINCOH, [SHIM], 0]);
    const alone = await run(prog, [], plainEnv());
    expect([alone.stdout, alone.code]).toEqual(['libpincoh copies: 0\nno shim: running without pincoh\n', 0]);
  });
});

describe('the CLI installed outside the repository (npm install -g)', () => {
  it('npm install -g --prefix P <clone> (its prepare script runs): P/bin/pincoh works from any directory, and npx finds it there', async () => {
    const dir = tempDir('install-npm');
    // A clone as a user has it after `npm install`: this checkout's files and
    // builds (not its .git), with its node_modules. A copy, so that the prepare
    // script npm runs in it (npm run build) rewrites the copy's dist/, not the
    // one other tests are running.
    const clone = join(dir, 'pincoh');
    await ok('sh', ['-c', 'mkdir "$1" && tar -C "$0" --exclude=./node_modules --exclude=./.git --exclude=./test-results -cf - . | tar -C "$1" -xf -', ROOT, clone]);
    symlinkSync(resolve(ROOT, 'node_modules'), join(clone, 'node_modules'));
    const prefix = join(dir, 'npmprefix');
    const built = statSync(join(clone, 'dist/cli/main.js')).mtimeMs;
    await ok('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', clone]);
    // npm ran the package's prepare script (npm run build) in the clone: what follows is checked after it
    expect(statSync(join(clone, 'dist/cli/main.js')).mtimeMs, 'npm install -g ran no prepare script; this test no longer covers one').toBeGreaterThan(built);
    const bin = join(prefix, 'bin/pincoh');
    expect(readlinkSync(bin)).toBe('../lib/node_modules/pincoh/bin/pincoh.js');

    const elsewhere = tempDir('install-cwd');
    const version = await runIn(elsewhere, bin, ['--version']);
    expect([version.stdout, version.code]).toEqual([`pincoh ${VERSION}\n`, 0]);
    const help = await runIn(elsewhere, bin, ['help', 'run']);
    expect(help.stdout).toMatch(/^usage: pincoh run \[-n N\]/);
    expect(help.code).toBe(0);

    // runs a program, preloading the shim of the package it was installed from
    await build(elsewhere, 'linked', [`-I${join(clone, 'native-shim/include')}`], ['-DPINCOH_WEAK']);
    const r = await runIn(elsewhere, bin, ['run', '-n', '2', '--', './linked']);
    expect(r.stdout).toBe(UNDER_PINCOH.repeat(2));
    expect(mapped(r)).toEqual([join(clone, 'native-shim/build/libpincoh.so'), join(clone, 'native-shim/build/libpincoh.so')]);
    expect(r.stderr).toMatch(SUMMARY(2));
    expect(r.code).toBe(0);

    // npx outside the repository finds the global install (and only then: without it, it asks the registry)
    const npx = await runIn(elsewhere, 'npx', ['--offline', '--no', '--', 'pincoh', '--version'], plainEnv({ npm_config_prefix: prefix }));
    expect([npx.stdout, npx.code]).toEqual([`pincoh ${VERSION}\n`, 0]);
  }, 180_000);
});
