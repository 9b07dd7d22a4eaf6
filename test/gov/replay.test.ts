import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import fc from "fast-check";
import { GovRequestError, type GovRequestErrorCode, ReplayGuard } from "../../src/gov/index.ts";

const digest = (label: string | number) => createHash("sha256").update(String(label)).digest("hex");
const T = 1_750_000_000;

function refusedWith(code: GovRequestErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GovRequestError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe("ReplayGuard", () => {
  test("a request is accepted once, then refused as a Replay", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    guard.add(digest(1), T, T);
    assert.ok(guard.has(digest(1)));
    assert.ok(!guard.has(digest(2)));
    assert.throws(() => guard.add(digest(1), T, T + 1), refusedWith("Replay"));
    guard.add(digest(2), T, T + 1);
    assert.equal(guard.size, 2);
  });

  test("check() refuses like add() but records nothing", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    guard.check(digest(1), T, T);
    guard.check(digest(1), T, T);
    assert.equal(guard.size, 0);
    guard.add(digest(1), T, T);
    assert.throws(() => guard.check(digest(1), T, T), refusedWith("Replay"));
  });

  test("a request created before now - window is Stale", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    assert.throws(() => guard.add(digest(1), T - 61, T), refusedWith("Stale"));
    guard.add(digest(2), T - 60, T);
  });

  test("entries leave memory once out of the window, and cannot come back as new", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    guard.add(digest(1), T, T);
    guard.add(digest(2), T + 50, T + 50);
    guard.prune(T + 61);
    assert.ok(!guard.has(digest(1)), "pruned");
    assert.ok(guard.has(digest(2)));
    assert.equal(guard.size, 1);
    assert.throws(() => guard.add(digest(1), T, T + 61), refusedWith("Stale"));
  });

  test("the horizon never moves back, even if the clock passed in does", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    guard.add(digest(1), T, T);
    guard.prune(T + 1000);
    assert.equal(guard.horizon, T + 940);
    // A replay of the forgotten request, judged against a clock that went back: still refused.
    assert.throws(() => guard.add(digest(1), T, T), refusedWith("Stale"));
    guard.prune(T);
    assert.equal(guard.horizon, T + 940);
  });

  test("a far-future created_at does not move the horizon (a member cannot lock others out)", () => {
    const guard = new ReplayGuard({ windowSeconds: 60 });
    guard.add(digest(1), T + 1_000_000, T);
    guard.add(digest(2), T, T + 1);
    assert.ok(guard.horizon <= T);
  });

  test("memory stays bounded under a flood; forgotten entries are refused as Stale", () => {
    const guard = new ReplayGuard({ windowSeconds: 3600, maxEntries: 10 });
    for (let i = 0; i < 25; i++) guard.add(digest(i), T + i, T + 30);
    assert.ok(guard.size <= 10, `size ${guard.size}`);
    assert.ok(!guard.has(digest(0)));
    assert.throws(() => guard.add(digest(0), T, T + 30), refusedWith("Stale"));
    assert.ok(guard.has(digest(24)));
  });

  test("JSON round trip keeps behaviour", () => {
    const guard = new ReplayGuard({ windowSeconds: 60, maxEntries: 100 });
    guard.add(digest(1), T, T);
    guard.add(digest(2), T + 10, T + 70);
    const copy = ReplayGuard.fromJSON(JSON.parse(JSON.stringify(guard.toJSON())));
    assert.deepEqual(copy.toJSON(), guard.toJSON());
    assert.equal(copy.windowSeconds, 60);
    assert.equal(copy.maxEntries, 100);
    assert.throws(() => copy.add(digest(2), T + 10, T + 71), refusedWith("Replay"));
    assert.throws(() => copy.add(digest(1), T, T + 71), refusedWith("Stale"));
    assert.deepEqual(
      copy.toJSON().entries.map(([d]) => d),
      [digest(2)],
    );
  });

  test("fromJSON refuses malformed state", () => {
    const good = { windowSeconds: 60, maxEntries: 2, horizon: 0, entries: [[digest(1), T]] };
    const bad: [string, unknown][] = [
      ["not an object", [good]],
      ["missing window", { ...good, windowSeconds: undefined }],
      ["zero window", { ...good, windowSeconds: 0 }],
      ["horizon not a number", { ...good, horizon: "0" }],
      ["entries not an array", { ...good, entries: {} }],
      ["entry not a pair", { ...good, entries: [[digest(1)]] }],
      ["digest not hex", { ...good, entries: [["xyz", T]] }],
      ["uppercase digest", { ...good, entries: [[digest(1).toUpperCase(), T]] }],
      ["fractional createdAt", { ...good, entries: [[digest(1), T + 0.5]] }],
      [
        "duplicate digest",
        {
          ...good,
          entries: [
            [digest(1), T],
            [digest(1), T + 1],
          ],
        },
      ],
      [
        "more entries than maxEntries",
        {
          ...good,
          entries: [
            [digest(1), T],
            [digest(2), T],
            [digest(3), T],
          ],
        },
      ],
    ];
    for (const [name, state] of bad) {
      assert.throws(() => ReplayGuard.fromJSON(state), refusedWith("InvalidInput"), name);
    }
    ReplayGuard.fromJSON(good);
  });

  test("bad arguments are refused", () => {
    const guard = new ReplayGuard();
    assert.throws(() => guard.add("nothex", T, T), refusedWith("InvalidInput"));
    assert.throws(() => guard.add(digest(1), Number.NaN, T), refusedWith("InvalidInput"));
    assert.throws(() => guard.add(digest(1), T, Number.POSITIVE_INFINITY), refusedWith("InvalidInput"));
    assert.throws(() => new ReplayGuard({ windowSeconds: -1 }), refusedWith("InvalidInput"));
    assert.equal(guard.size, 0);
  });

  test("property: no request is ever accepted twice, and memory stays bounded", () => {
    // A digest covers its request's created_at (the COSE signed content does), so a request is the
    // pair (id, createdAt) and a replay repeats both.
    const op = fc.record({
      id: fc.integer({ min: 0, max: 4 }),
      created: fc.integer({ min: 0, max: 200 }),
      tick: fc.integer({ min: -30, max: 40 }), // the clock may step back
      save: fc.boolean(), // persist and restore between steps
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 100 }), fc.integer({ min: 1, max: 12 }), (ops, maxEntries) => {
        let guard = new ReplayGuard({ windowSeconds: 50, maxEntries });
        const everAccepted = new Set<string>();
        let now = T + 60;
        for (const { id, created, tick, save } of ops) {
          now += tick;
          const d = digest(`${id}@${created}`);
          let accepted = true;
          try {
            guard.add(d, T + created, now);
          } catch (err) {
            assert.ok(err instanceof GovRequestError);
            assert.ok(err.code === "Replay" || err.code === "Stale", err.code);
            accepted = false;
          }
          if (accepted) {
            assert.ok(!everAccepted.has(d), `request ${id}@${created} accepted twice`);
            everAccepted.add(d);
          }
          assert.ok(guard.size <= maxEntries);
          if (save) guard = ReplayGuard.fromJSON(JSON.parse(JSON.stringify(guard.toJSON())));
        }
      }),
      { numRuns: 500 },
    );
  });
});
