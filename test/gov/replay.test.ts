import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  GovRequestError,
  type GovRequestErrorCode,
  MemberReplayWindow,
  ReplayGuard,
  type WindowLimits,
} from "../../src/gov/index.ts";

const digest = (label: string | number) => createHash("sha256").update(String(label)).digest("hex");
const T = 1_750_000_000;
const LIMITS: WindowLimits = { keepSeconds: 60, maxEntries: 100 };
const req = (label: string | number, createdAt: number, type = "proposal") => ({
  digest: digest(label),
  createdAt,
  type,
});

function refusedWith(code: GovRequestErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GovRequestError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe("MemberReplayWindow", () => {
  test("a request is accepted once, then refused as a Replay", () => {
    const w = new MemberReplayWindow();
    w.admit(req(1, T), T, LIMITS);
    assert.throws(() => w.admit(req(1, T), T + 1, LIMITS), refusedWith("Replay"));
    w.admit(req(2, T), T + 1, LIMITS);
    assert.equal(w.entries.length, 2);
  });

  test("check() refuses like admit() but records nothing", () => {
    const w = new MemberReplayWindow();
    w.check(digest(1), T);
    assert.equal(w.entries.length, 0);
    w.admit(req(1, T), T, LIMITS);
    assert.throws(() => w.check(digest(1), T), refusedWith("Replay"));
  });

  test("entries are forgotten by arrival, and the horizon then refuses their replays", () => {
    const w = new MemberReplayWindow();
    w.admit(req(1, T), T, LIMITS);
    w.admit(req(2, T + 50), T + 50, LIMITS);
    w.admit(req(3, T + 61), T + 61, LIMITS);
    assert.deepEqual(
      w.entries.map((e) => e.digest),
      [digest(2), digest(3)],
    );
    assert.equal(w.horizon, T + 1);
    assert.throws(() => w.admit(req(1, T), T + 62, LIMITS), refusedWith("Stale"));
  });

  test("ordered by arrival: entries expire by when they came, whatever they claim", () => {
    const w = new MemberReplayWindow();
    w.admit(req(1, T - 50), T, LIMITS); // dated in the past
    w.admit(req(2, T + 30), T + 1, LIMITS); // dated ahead
    w.admit(req(3, T + 61), T + 61, LIMITS);
    // The first arrival is forgotten (horizon past its created_at); the second, dated ahead, is
    // kept exactly as long as any other arrival, no longer.
    assert.equal(w.horizon, T - 49);
    assert.throws(() => w.admit(req(1, T - 50), T + 62, LIMITS), refusedWith("Stale"));
    assert.throws(() => w.admit(req(2, T + 30), T + 62, LIMITS), refusedWith("Replay"));
    // One second later the second arrival has expired too.
    w.admit(req(4, T + 62), T + 62, LIMITS);
    assert.deepEqual(
      w.entries.map((e) => e.digest),
      [digest(3), digest(4)],
    );
    assert.equal(w.horizon, T + 31);
  });

  test("over the cap the oldest arrivals go, and the horizon covers them", () => {
    const w = new MemberReplayWindow();
    const limits = { keepSeconds: 3600, maxEntries: 10 };
    for (let i = 0; i < 25; i++) w.admit(req(i, T + i), T + 30, limits);
    assert.ok(w.entries.length <= 10);
    assert.throws(() => w.admit(req(0, T), T + 30, limits), refusedWith("Stale"));
    assert.throws(() => w.admit(req(24, T + 24), T + 30, limits), refusedWith("Replay"));
  });

  test("the horizon never moves back, even if the clock passed in does", () => {
    const w = new MemberReplayWindow();
    w.admit(req(1, T), T, LIMITS);
    w.admit(req(2, T + 1000), T + 1000, LIMITS);
    assert.equal(w.horizon, T + 1);
    assert.throws(() => w.admit(req(1, T), T, LIMITS), refusedWith("Stale"));
  });

  test("bad arguments are refused", () => {
    const w = new MemberReplayWindow();
    assert.throws(() => w.admit({ ...req(1, T), digest: "nothex" }, T, LIMITS), refusedWith("InvalidInput"));
    assert.throws(() => w.admit(req(1, Number.NaN), T, LIMITS), refusedWith("InvalidInput"));
    assert.throws(() => w.admit(req(1, T), Number.POSITIVE_INFINITY, LIMITS), refusedWith("InvalidInput"));
    assert.throws(
      () => w.admit(req(1, T), T, { keepSeconds: 0, maxEntries: 1 }),
      refusedWith("InvalidInput"),
    );
    assert.throws(
      () =>
        new MemberReplayWindow(0, [
          { ...req(1, T), arrival: T },
          { ...req(1, T), arrival: T + 1 },
        ]),
      refusedWith("InvalidInput"),
    );
    assert.equal(w.entries.length, 0);
  });
});

describe("ReplayGuard (one window per member)", () => {
  test("one member's burst dated ahead never makes another member's fresh request Stale", () => {
    const guard = new ReplayGuard({ keepSeconds: 630, maxEntries: 100 });
    // The attack of issue 11: 100+ requests dated up to +30 s (the future allowance) from one member.
    // Past its cap the member only moves its own horizon: its further requests dated T + 30 are
    // refused, nobody else's.
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      try {
        guard.add("mallory", req(`m${i}`, T + 30), T);
      } catch (e) {
        assert.ok(e instanceof GovRequestError && e.code === "Stale");
        refused++;
      }
    }
    assert.equal(refused, 49);
    assert.ok(guard.window("mallory").entries.length <= 100);
    assert.equal(guard.window("mallory").horizon, T + 31);
    guard.add("alice", req("a", T), T);
    guard.add("alice", req("b", T - 600), T + 1);
    assert.equal(guard.window("alice").horizon, 0);
  });

  test("property: no request is ever accepted twice; other members are never refused as Stale", () => {
    // A digest covers its request's created_at (the COSE signed content does), so a request is the
    // pair (id, createdAt) and a replay repeats both.
    const op = fc.record({
      member: fc.constantFrom("m0", "m1"),
      id: fc.integer({ min: 0, max: 4 }),
      created: fc.integer({ min: -60, max: 40 }), // relative to now, within a test allowance
      tick: fc.integer({ min: -30, max: 40 }), // the clock may step back
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 12 }), (ops, maxEntries) => {
        const guard = new ReplayGuard({ keepSeconds: 100, maxEntries });
        const everAccepted = new Set<string>();
        let now = T + 60;
        for (const { member, id, created, tick } of ops) {
          now += tick;
          const createdAt = now + created;
          const label = `${member}/${id}@${createdAt}`;
          const before = guard.window(member).horizon;
          let accepted = true;
          try {
            guard.add(member, req(label, createdAt), now);
          } catch (err) {
            assert.ok(err instanceof GovRequestError);
            assert.ok(err.code === "Replay" || err.code === "Stale", err.code);
            if (err.code === "Stale") assert.ok(createdAt < before, "Stale only below the member's horizon");
            accepted = false;
          }
          if (accepted) {
            assert.ok(!everAccepted.has(label), `request ${label} accepted twice`);
            everAccepted.add(label);
          }
          assert.ok(guard.window(member).entries.length <= maxEntries);
        }
        // m1's horizon comes from m1's own requests only.
        const own = ops.filter((o) => o.member === "m1").length;
        if (own === 0) assert.equal(guard.window("m1").horizon, 0);
      }),
      { numRuns: 300 },
    );
  });
});
