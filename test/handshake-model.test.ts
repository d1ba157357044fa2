// The revoke-versus-put handshake, checked in every interleaving by the model
// in test/model/handshake.ts: the protocol holds under SC and x86-TSO; each
// broken ordering is caught with a counterexample that explains itself.

import { describe, expect, it } from 'vitest';
import { check, formatTrace, VARIANTS, type MemoryModel, type Params, type Step, type Variant, type ViolationKind } from './model/handshake.js';

/** The hardest setting: attach races the revoke, attachers are killed and stopped. */
const racing = (memory: MemoryModel, attachers: number, puts = 2): Params => ({ memory, attachers, puts, concurrentAttach: true, kills: true, stops: true });

/** Runs a broken variant, prints its counterexample and returns the trace. */
function violation(v: Variant, p: Params, kind: ViolationKind): Step[] {
  const r = check(v, p);
  expect(r.violation, `${v.name} under ${p.memory} should fail`).toBeDefined();
  const trace = r.violation!.trace;
  console.log(`${v.name} (${v.description}) under ${p.memory}: ${r.violation!.kind} after ${r.states} states\n${formatTrace(trace)}`);
  expect(r.violation!.kind).toBe(kind);
  return trace;
}

/** The index of the first step whose text starts with `text`; it must be there. */
function at(trace: Step[], text: string): number {
  const i = trace.findIndex((s) => s.text.startsWith(text));
  expect(i, `a step "${text}" in\n${formatTrace(trace)}`).toBeGreaterThanOrEqual(0);
  return i;
}

/** A stale write: the trace ends in an attacher's A3 after the owner's O4. */
function endsInStaleWrite(trace: Step[], who = 'a0'): void {
  const last = trace[trace.length - 1]!;
  expect(last.text).toBe(`${who} A3: writes into M, which is UNMAPPED: STALE WRITE`);
  expect(at(trace, 'owner O4')).toBeLessThan(trace.length - 1);
}

describe('the revoke-versus-put handshake model', () => {
  // States explored for 1, 2 and 3 attachers, 2 puts each: pinned, so a
  // change that shrinks the search shows. Every store of the protocol is
  // fenced (xchg) or locked (RMW), so no store is ever buffered and TSO
  // reaches exactly the states SC does.
  const expected = [143, 4835, 161066];
  for (const memory of ['SC', 'TSO'] as const) {
    it(`the revoke-versus-put handshake holds in every interleaving (${memory}; attach racing the revoke, kills, stops; 1, 2, 3 attachers): ${expected.join(' + ')} states`, () => {
      const states = [1, 2, 3].map((n) => {
        const r = check(VARIANTS.correct, racing(memory, n));
        expect(r.violation, r.violation && formatTrace(r.violation.trace)).toBeUndefined();
        expect(r.transitions).toBeGreaterThan(r.states);
        return r.states;
      });
      console.log(`correct under ${memory}: ${states.join(' + ')} states for 1, 2, 3 attachers`);
      expect(states).toEqual(expected);
    });
  }

  it('holds too when both attachers are linked before the revoke, with or without kills and stops', () => {
    for (const memory of ['SC', 'TSO'] as const)
      for (const kills of [false, true])
        for (const stops of [false, true]) {
          const r = check(VARIANTS.correct, { memory, attachers: 2, puts: 2, concurrentAttach: false, kills, stops });
          expect(r.violation, r.violation && formatTrace(r.violation.trace)).toBeUndefined();
          expect(r.states).toBeGreaterThan(0);
        }
  });

  it('a. an attacher that reads E before announcing its put (A2 before A1) writes into unmapped memory', () => {
    const t = violation(VARIANTS.checkBeforeAnnounce, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    // It saw E LIVE before O1, yet the owner saw I[0] == 0: its A1 came after O3.
    expect(at(t, 'a0 A2: reads E = LIVE')).toBeLessThan(at(t, 'owner O1'));
    expect(at(t, 'owner O3: I[0] == 0')).toBeLessThan(at(t, 'a0 A1'));
  });

  it('b. an owner that reads the list and waits before E := DEAD (O2, O3 before O1) writes into unmapped memory', () => {
    const t = violation(VARIANTS.waitBeforeKill, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    expect(at(t, 'a0 A2: reads E = LIVE')).toBeLessThan(at(t, 'owner O1'));
  });

  it('c. under TSO, E := DEAD as a plain store lets the owner read I[a] == 0 while DEAD sits in its buffer (SC: holds)', () => {
    const p = { ...racing('TSO', 1), concurrentAttach: false };
    expect(check(VARIANTS.unfencedKill, { ...p, memory: 'SC' }).violation).toBeUndefined();
    const t = violation(VARIANTS.unfencedKill, p, 'stale-write');
    endsInStaleWrite(t);
    const drain = at(t, 'owner drain: E := DEAD reaches memory');
    expect(at(t, 'owner O1: E := DEAD (plain store)')).toBeLessThan(at(t, 'owner O3: I[0] == 0'));
    expect(at(t, 'owner O3: I[0] == 0')).toBeLessThan(at(t, 'a0 A1'));
    expect(at(t, 'a0 A2: reads E = LIVE')).toBeLessThan(drain);
  });

  it('c. under TSO, I[a]++ as a plain store lets the attacher read E LIVE while its increment sits in its buffer (SC: holds)', () => {
    const p = racing('TSO', 1);
    expect(check(VARIANTS.unfencedAnnounce, { ...p, memory: 'SC' }).violation).toBeUndefined();
    const t = violation(VARIANTS.unfencedAnnounce, p, 'stale-write');
    endsInStaleWrite(t);
    const drain = at(t, 'a0 drain: I[0] := 1 reaches memory');
    expect(at(t, 'a0 A1: I[0] := 1 (plain store)')).toBeLessThan(at(t, 'a0 A2: reads E = LIVE'));
    expect(at(t, 'a0 A2: reads E = LIVE')).toBeLessThan(at(t, 'owner O1'));
    expect(at(t, 'owner O3: I[0] == 0')).toBeLessThan(drain);
  });

  it('d. a coordinator that replies before it links (C2 before C1) lets a put the owner does not know of run into the unmap', () => {
    // It does break safety: the attacher passes A2 before O1, and is not yet
    // in the list the owner reads at O2.
    const t = violation(VARIANTS.replyBeforeLink, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    expect(at(t, 'coord C2: reply to a0')).toBe(0);
    expect(at(t, 'owner O2: L := list = {}')).toBeLessThan(at(t, 'owner O4'));
    expect(t.some((s) => s.op === 'C1')).toBe(false);
    // Attached before the revoke, the same coordinator is harmless.
    expect(check(VARIANTS.replyBeforeLink, { ...racing('SC', 2), concurrentAttach: false }).violation).toBeUndefined();
  });

  it('d. an owner that reads the list before E := DEAD (O2 before O1) misses an attacher linked in between', () => {
    const t = violation(VARIANTS.listBeforeKill, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    expect(at(t, 'owner O2: L := list = {}')).toBeLessThan(at(t, 'coord C1: list := list + {a0}'));
    expect(at(t, 'a0 A2: reads E = LIVE')).toBeLessThan(at(t, 'owner O1'));
  });

  it('e. an owner that does not wait for puts in flight (no O3) unmaps under one', () => {
    const t = violation(VARIANTS.noWait, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    expect(t.some((s) => s.op === 'O3')).toBe(false);
  });

  it('e. a bounded wait that expires without the coordinator killing the stopped attacher lets it resume into the unmap', () => {
    const t = violation(VARIANTS.expiryWithoutKill, racing('SC', 1), 'stale-write');
    endsInStaleWrite(t);
    expect(at(t, 'env stop: a0')).toBeLessThan(at(t, 'owner expire'));
    expect(at(t, 'owner O4')).toBeLessThan(at(t, 'env resume: a0'));
  });

  it('f. an owner that waits for I[a] == 0 with no escape for a dead attacher deadlocks', () => {
    const t = violation(VARIANTS.waitWithoutEscape, racing('SC', 1), 'deadlock');
    // a0 is killed inside its put: I[0] stays 1, and the owner, in O3, waits forever.
    expect(t[t.length - 1]!.text).toBe('env kill: a0 (at A2, I[0] = 1)');
    expect(at(t, 'owner O2: L := list = {a0}')).toBeGreaterThanOrEqual(0);
    expect(t.some((s) => s.op === 'O3' || s.op === 'O4')).toBe(false);
  });
});
