import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../../lib/random.ts';
import { createPolicy, policyKinds, type Candidate, type Policy, type PolicyKind } from './policy.ts';

type Sim = { name: string; weight: number; inFlight: number };

const make = (kind: PolicyKind, seed = 1): Policy => createPolicy(kind, { random: seededRandom(seed) });
const members = (names: string[], weight = 1): Sim[] => names.map((name) => ({ name, weight, inFlight: 0 }));

function counts(picks: (Candidate | undefined)[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of picks) if (p) out.set(p.name, (out.get(p.name) ?? 0) + 1);
  return out;
}

/**
 * Drives a policy as the pool would: each pick adds a request to the chosen member; once
 * `concurrency` requests run, a random running request completes first (so a member with more
 * requests running also finishes more of them, as a member with more capacity does).
 */
function simulate(policy: Policy, cands: Sim[], picks: number, seed: number, concurrency = 8): Map<string, number> {
  const random = seededRandom(seed);
  const chosen: Candidate[] = [];
  for (let i = 0; i < picks; i++) {
    const running = cands.reduce((n, c) => n + c.inFlight, 0);
    if (running >= concurrency) {
      let r = Math.floor(random.next() * running);
      for (const c of cands) {
        if (r < c.inFlight) {
          c.inFlight--;
          break;
        }
        r -= c.inFlight;
      }
    }
    const p = policy.pick(cands, { key: `node${i}.example.com` });
    assert.ok(p);
    p.inFlight++;
    chosen.push(p);
  }
  return counts(chosen);
}

// Round-robin ignores weights by definition; every other policy must honour them.
const weighted: Record<PolicyKind, boolean> = {
  'least-in-flight': true,
  'least-time': true,
  'round-robin': false,
  'weighted-round-robin': true,
  'power-of-two': true,
  'consistent-hash': true,
};

for (const kind of policyKinds) {
  describe(`policy conformance: ${kind}`, () => {
    test('reports its kind', () => {
      assert.equal(make(kind).kind, kind);
    });

    test('returns undefined for no candidates, with or without a key', () => {
      const policy = make(kind);
      assert.equal(policy.pick([], {}), undefined);
      assert.equal(policy.pick([], { key: 'agent.example.com' }), undefined);
    });

    test('with a single candidate returns it', () => {
      const policy = make(kind);
      const only = { name: 'only', weight: 3, inFlight: 7 };
      for (let i = 0; i < 5; i++) assert.equal(policy.pick([only], { key: `k${i}` }), only);
      assert.equal(policy.pick([only], {}), only);
    });

    test('never returns a non-candidate, as the candidate set changes on every call', () => {
      const policy = make(kind);
      const all = members(['a', 'b', 'c', 'd', 'e', 'f']);
      const random = seededRandom(7);
      for (let i = 0; i < 3000; i++) {
        const subset = all.filter(() => random.next() < 0.5);
        for (const c of subset) {
          c.inFlight = Math.floor(random.next() * 4);
          c.weight = 1 + Math.floor(random.next() * 3);
        }
        const picked = policy.pick(subset, random.next() < 0.5 ? { key: `n${i}` } : {});
        if (subset.length === 0) assert.equal(picked, undefined);
        else assert.ok(picked !== undefined && subset.includes(picked), `picked ${picked?.name} from ${subset.map((c) => c.name).join(',')}`);
      }
    });

    test('spreads 4000 picks with distinct keys evenly over 4 equal candidates (±15%)', () => {
      const policy = make(kind);
      const cands = members(['a', 'b', 'c', 'd']);
      const picks = Array.from({ length: 4000 }, (_, i) => policy.pick(cands, { key: `agent-${i}.example.com` }));
      const by = counts(picks);
      for (const c of cands) {
        const n = by.get(c.name) ?? 0;
        assert.ok(n >= 850 && n <= 1150, `${c.name} got ${n} of 4000`);
      }
    });

    test('spreads load evenly with in-flight accounting', () => {
      const by = simulate(make(kind), members(['a', 'b', 'c', 'd']), 4000, 3);
      for (const name of ['a', 'b', 'c', 'd']) {
        const n = by.get(name) ?? 0;
        assert.ok(n >= 850 && n <= 1150, `${name} got ${n} of 4000`);
      }
    });

    test(weighted[kind] ? 'honours weights 1:3 (25% / 75%)' : 'ignores weights (50% / 50%)', () => {
      const by = simulate(make(kind), [{ name: 'light', weight: 1, inFlight: 0 }, { name: 'heavy', weight: 3, inFlight: 0 }], 4000, 11);
      const share = (by.get('light') ?? 0) / 4000;
      const expected = weighted[kind] ? 0.25 : 0.5;
      assert.ok(Math.abs(share - expected) <= 0.04, `light got ${(share * 100).toFixed(1)}%, expected ${expected * 100}%`);
    });

    test('keeps spreading over the remaining members when one leaves, and includes one that joins', () => {
      const policy = make(kind);
      const four = members(['a', 'b', 'c', 'd']);
      for (let i = 0; i < 100; i++) policy.pick(four, { key: `before${i}` });
      const three = four.filter((c) => c.name !== 'b');
      const after = counts(Array.from({ length: 600 }, (_, i) => policy.pick(three, { key: `after${i}` })));
      assert.equal(after.get('b'), undefined);
      for (const c of three) assert.ok((after.get(c.name) ?? 0) >= 120, `${c.name} got ${after.get(c.name) ?? 0} of 600`);
      const five = [...four, { name: 'e', weight: 1, inFlight: 0 }];
      const joined = counts(Array.from({ length: 1000 }, (_, i) => policy.pick(five, { key: `joined${i}` })));
      for (const c of five) assert.ok((joined.get(c.name) ?? 0) >= 120, `${c.name} got ${joined.get(c.name) ?? 0} of 1000`);
    });

    test('is deterministic for a given random seed', () => {
      const run = (): string[] => {
        const policy = make(kind, 42);
        const cands = members(['a', 'b', 'c']);
        return Array.from({ length: 50 }, (_, i) => policy.pick(cands, i % 2 ? { key: `k${i}` } : {})?.name ?? '');
      };
      assert.deepEqual(run(), run());
    });
  });
}

describe('round-robin', () => {
  test('cycles in name order whatever the candidate order', () => {
    const policy = make('round-robin');
    const cands = members(['c', 'a', 'b']);
    assert.deepEqual(Array.from({ length: 7 }, () => policy.pick(cands, {})?.name), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  test('continues after the last name picked when members leave and join', () => {
    const policy = make('round-robin');
    const [a, b, c, d] = members(['a', 'b', 'c', 'd']) as [Sim, Sim, Sim, Sim];
    assert.equal(policy.pick([a, b, c], {}), a);
    assert.equal(policy.pick([a, b, c], {}), b);
    // b left after being picked: c is next, not a again.
    assert.equal(policy.pick([a, c], {}), c);
    // d joined after c: it gets its turn before the rotation wraps.
    assert.equal(policy.pick([a, c, d], {}), d);
    assert.equal(policy.pick([a, c, d], {}), a);
  });
});

describe('weighted-round-robin', () => {
  test('weights 5,1,1 give the smooth sequence a,a,b,a,c,a,a (nginx)', () => {
    const policy = make('weighted-round-robin');
    const cands = [{ name: 'a', weight: 5, inFlight: 0 }, { name: 'b', weight: 1, inFlight: 0 }, { name: 'c', weight: 1, inFlight: 0 }];
    const seq = Array.from({ length: 14 }, () => policy.pick(cands, {})?.name).join(',');
    assert.equal(seq, 'a,a,b,a,c,a,a,a,a,b,a,c,a,a');
  });

  test('a member that joins after much churn gets its turn within one round', () => {
    const policy = make('weighted-round-robin');
    const all = members(['a', 'b', 'c']);
    // Churn: b is picked and then missing from the next call, many times over.
    for (let i = 0; i < 500; i++) {
      const picked = policy.pick(all, {});
      if (picked?.name === 'b') policy.pick(all.filter((c) => c.name !== 'b'), {});
    }
    const late = members(['z'])[0] as Sim;
    const seq = Array.from({ length: 8 }, () => policy.pick([...all, late], {})?.name);
    for (const round of [seq.slice(0, 4), seq.slice(4)]) assert.deepEqual([...round].sort(), ['a', 'b', 'c', 'z'], seq.join(','));
  });
});

describe('least-in-flight', () => {
  test('picks the member with the fewest requests relative to its weight', () => {
    const policy = make('least-in-flight');
    const a = { name: 'a', weight: 1, inFlight: 2 };
    const b = { name: 'b', weight: 4, inFlight: 3 }; // 0.75 per unit of weight
    const c = { name: 'c', weight: 1, inFlight: 1 };
    assert.equal(policy.pick([a, b, c], {}), b);
    assert.equal(policy.pick([a, c], {}), c);
  });

  test('breaks ties among equally loaded members so that none is always favoured', () => {
    const policy = make('least-in-flight');
    const cands = [{ name: 'x', weight: 1, inFlight: 3 }, ...members(['a', 'b', 'c'])];
    const by = counts(Array.from({ length: 300 }, () => policy.pick(cands, {})));
    assert.equal(by.get('x'), undefined);
    for (const name of ['a', 'b', 'c']) assert.ok((by.get(name) ?? 0) > 60, `${name} got ${by.get(name) ?? 0}`);
  });
});

describe('power-of-two', () => {
  test('never picks the most loaded of several members', () => {
    const policy = make('power-of-two');
    const cands = [{ name: 'busy', weight: 1, inFlight: 9 }, ...members(['a', 'b', 'c'])];
    for (let i = 0; i < 200; i++) assert.notEqual(policy.pick(cands, {})?.name, 'busy');
  });
});

describe('consistent-hash', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `agent${i}.example.com`);
  const assign = (policy: Policy, cands: Candidate[]): string[] => keys.map((key) => policy.pick(cands, { key })?.name ?? '');

  test('the same key goes to the same member, in any candidate order and across instances', () => {
    const cands = members(['a', 'b', 'c', 'd']);
    const first = make('consistent-hash', 1);
    const second = make('consistent-hash', 2);
    for (const key of keys.slice(0, 200)) {
      const name = first.pick(cands, { key })?.name;
      assert.equal(first.pick(cands, { key })?.name, name);
      assert.equal(second.pick([...cands].reverse(), { key })?.name, name);
    }
  });

  test('adding a fifth member moves 15-25% of keys, all of them to the new member', () => {
    const policy = make('consistent-hash');
    const four = members(['a', 'b', 'c', 'd']);
    const before = assign(policy, four);
    const after = assign(policy, [...four, ...members(['e'])]);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      assert.equal(after[i], 'e', `${keys[i]} moved from ${before[i]} to ${after[i]}`);
    }
    assert.ok(moved >= 1500 && moved <= 2500, `${moved} of 10000 keys moved`);
  });

  test("removing a member (or its turning ineligible) moves only that member's keys", () => {
    const policy = make('consistent-hash');
    const four = members(['a', 'b', 'c', 'd']);
    const before = assign(policy, four);
    const after = assign(policy, four.filter((c) => c.name !== 'c'));
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === 'c') assert.notEqual(after[i], 'c');
      else assert.equal(after[i], before[i], `${keys[i]} moved from ${before[i]} to ${after[i]}`);
    }
  });

  test('without a key it falls back to the least loaded member', () => {
    const policy = make('consistent-hash');
    const a = { name: 'a', weight: 1, inFlight: 4 };
    const b = { name: 'b', weight: 1, inFlight: 1 };
    assert.equal(policy.pick([a, b], {}), b);
    assert.equal(policy.pick([a, b], { key: undefined }), b);
  });
});

describe('least-time', () => {
  const cand = (name: string, compiles: number, compileSlots: number, compileMs: number | undefined) => ({ name, weight: 1, inFlight: compiles, compiles, compileSlots, compileMs });

  test('sends a compile where it is expected to finish first: compile time scaled by how full the slots are', () => {
    const p = make('least-time');
    // fast: (2+1)/4 × 1000 = 750; slow: (0+1)/4 × 2000 = 500 → slow, though it is the slower one.
    assert.equal(p.pick([cand('fast', 2, 4, 1000), cand('slow', 0, 4, 2000)], { compile: true })?.name, 'slow');
    // fast: (1+1)/4 × 1000 = 500; slow: (1+1)/4 × 2000 = 1000 → fast.
    assert.equal(p.pick([cand('fast', 1, 4, 1000), cand('slow', 1, 4, 2000)], { compile: true })?.name, 'fast');
  });

  test('a member without a compile time yet counts as average, so a new member is tried', () => {
    const p = make('least-time');
    // new: (0+1)/4 × 1500 (the average) = 375 beats (1+1)/4 × 1000 = 500 and (0+1)/4 × 2000 = 500.
    assert.equal(p.pick([cand('a', 1, 4, 1000), cand('b', 0, 4, 2000), cand('new', 0, 4, undefined)], { compile: true })?.name, 'new');
  });

  test('other requests go to the least loaded member whatever the compile times', () => {
    const p = make('least-time');
    assert.equal(p.pick([cand('fast', 3, 4, 100), cand('slow', 1, 4, 9000)], {})?.name, 'slow');
  });
});
