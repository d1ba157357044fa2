import { describe, expect, it } from 'vitest';
import { audit, auditOne, parseMaps, readMaps } from '../src/memory/maps.js';

const maps = parseMaps(`00400000-00401000 r-xp 00000000 08:01 1 /bin/x
7f0000000000-7f0000002000 rw-p 00000000 00:00 0
7f0000002000-7f0000003000 r--p 00000000 00:00 0
7f0000004000-7f0000005000 rw-p 00000000 00:00 0`);
const reg = (start: number, end: number, flags = 3) => ({ key: 1n, start, end, flags });
const B = 0x7f0000000000;

describe('audit', () => {
  it('parses maps', () => {
    expect(maps).toHaveLength(4);
    expect(maps[1]).toEqual({ start: B, end: B + 0x2000, read: true, write: true });
  });

  it('finds holes and lost permissions, across adjacent mappings', () => {
    expect(auditOne(reg(B, B + 0x2000), maps)).toBeUndefined();
    expect(auditOne(reg(B + 0x1000, B + 0x3000, 1), maps)).toBeUndefined(); // read-only need across two mappings
    expect(auditOne(reg(B + 0x1000, B + 0x3000, 3), maps)).toBe('lost write');
    expect(auditOne(reg(B + 0x2800, B + 0x4800, 1), maps)).toBe('unmapped'); // the hole at 0x3000
    expect(auditOne(reg(0x00400000, 0x00400100, 2), maps)).toBe('lost write');
    expect(auditOne(reg(B + 0x10000, B + 0x11000), maps)).toBe('unmapped');
    expect(audit([reg(B, B + 0x1000), reg(B + 0x3000, B + 0x3100)], maps).map((f) => f.finding)).toEqual(['unmapped']);
  });

  it('reads a live process, and says undefined for a gone one', () => {
    expect(readMaps(process.pid)!.length).toBeGreaterThan(5);
    expect(readMaps(2 ** 22 + 7)).toBeUndefined();
  });
});
