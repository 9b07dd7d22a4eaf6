import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseAddress } from "../../src/net/address.ts";
import { backoffDelay, validateBackoff } from "../../src/net/backoff.ts";
import { NetError } from "../../src/net/errors.ts";

test("backoff doubles from initialMs up to maxMs, with jitter in the upper half", () => {
  const b = { initialMs: 100, maxMs: 5_000 };
  assert.equal(backoffDelay(0, b, 0), 50);
  assert.equal(backoffDelay(0, b, 0.5), 75);
  assert.equal(backoffDelay(1, b, 0), 100);
  assert.equal(backoffDelay(3, b, 0.5), 600);
  assert.equal(backoffDelay(6, b, 0), 2_500); // 6400 capped at 5000
  assert.equal(backoffDelay(10_000, b, 1), 5_000);
});

test("backoff stays within [ceiling/2, ceiling] and ceilings never shrink", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.nat({ max: 2_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (initialMs, extra, attempt, r) => {
        const b = { initialMs, maxMs: initialMs + extra };
        const ceiling = Math.min(b.maxMs, initialMs * 2 ** Math.min(attempt, 52));
        const d = backoffDelay(attempt, b, r);
        assert.ok(d >= ceiling / 2 && d <= ceiling, `${d} outside [${ceiling / 2}, ${ceiling}]`);
        assert.ok(backoffDelay(attempt + 1, b, 1) >= backoffDelay(attempt, b, 1));
      },
    ),
  );
});

test("invalid backoff settings are refused", () => {
  assert.throws(() => validateBackoff({ initialMs: 0, maxMs: 10 }), /initialMs must be a positive/);
  assert.throws(() => validateBackoff({ initialMs: 10, maxMs: 5 }), /maxMs must be a number >= initialMs/);
  assert.throws(() => validateBackoff({ initialMs: Number.NaN, maxMs: 5 }), NetError);
});

test("addresses: host:port and [v6]:port, with clear errors otherwise", () => {
  assert.deepEqual(parseAddress("127.0.0.1:8000"), { host: "127.0.0.1", port: 8000 });
  assert.deepEqual(parseAddress("node-1.example:443"), { host: "node-1.example", port: 443 });
  assert.deepEqual(parseAddress("[::1]:9"), { host: "::1", port: 9 });
  for (const bad of [
    "127.0.0.1",
    "127.0.0.1:0",
    "127.0.0.1:65536",
    ":80",
    "::1:80",
    "[nope]:80",
    "a b:1",
    "h:01234567",
  ]) {
    assert.throws(
      () => parseAddress(bad),
      (err: unknown) => err instanceof NetError && err.code === "config",
      bad,
    );
  }
});
