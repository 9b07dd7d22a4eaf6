import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { combine } from "shamir-secret-sharing";
import { combineShares, RecoveryError, splitSecret } from "../../src/recovery/index.ts";
import { seededRandom, subsets } from "./share-fixtures.ts";

const SECRET = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);

describe("splitSecret / combineShares", () => {
  for (const [k, n] of [
    [1, 1],
    [1, 3],
    [2, 2],
    [2, 3],
    [3, 5],
    [4, 6],
    [5, 5],
  ] as const) {
    test(`${k}-of-${n}: every subset of at least ${k} shares rebuilds the secret`, async () => {
      const shares = await splitSecret(SECRET, n, k, seededRandom(k * 100 + n));
      assert.equal(shares.length, n);
      shares.forEach((share, i) => {
        assert.equal(share.length, SECRET.length + 1);
        assert.equal(share[SECRET.length], i + 1, "x coordinates are 1..n");
      });
      for (let size = k; size <= n; size++) {
        for (const subset of subsets(shares, size)) assert.deepEqual(await combineShares(subset), SECRET);
      }
    });
  }

  test("fewer than k shares give some other value, not the secret", async () => {
    const shares = await splitSecret(SECRET, 5, 3, seededRandom(1));
    for (const subset of [...subsets(shares, 2), ...subsets(shares, 1)]) {
      assert.notDeepEqual(await combineShares(subset), SECRET);
    }
  });

  test("shares are exactly what the audited package's combine() reads", async () => {
    const shares = await splitSecret(SECRET, 7, 4, seededRandom(2));
    for (const subset of subsets(shares, 4)) assert.deepEqual(await combine(subset), SECRET);
  });

  test("the same random source gives the same shares; another gives others", async () => {
    const a = await splitSecret(SECRET, 5, 3, seededRandom(3));
    const b = await splitSecret(SECRET, 5, 3, seededRandom(3));
    const c = await splitSecret(SECRET, 5, 3, seededRandom(4));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test("with k >= 2, a single share does not contain the secret", async () => {
    const shares = await splitSecret(SECRET, 3, 2, seededRandom(5));
    for (const share of shares) assert.notDeepEqual(share.subarray(0, 32), SECRET);
  });

  test("255 shares is the most; threshold must be 1..n; random source must answer in full", async () => {
    const most = await splitSecret(Uint8Array.of(9), 255, 2, seededRandom(6));
    assert.deepEqual(await combineShares([most[0]!, most[254]!]), Uint8Array.of(9));
    const refused = (code: string) => (err: unknown) => err instanceof RecoveryError && err.code === code;
    await assert.rejects(splitSecret(SECRET, 256, 2, seededRandom(0)), refused("InvalidInput"));
    await assert.rejects(splitSecret(SECRET, 3, 0, seededRandom(0)), refused("InvalidInput"));
    await assert.rejects(splitSecret(SECRET, 3, 4, seededRandom(0)), refused("InvalidInput"));
    await assert.rejects(splitSecret(new Uint8Array(0), 3, 2, seededRandom(0)), refused("InvalidInput"));
    await assert.rejects(
      splitSecret(SECRET, 3, 2, () => new Uint8Array(1)),
      refused("InvalidInput"),
    );
  });

  test("combine refuses repeated or zero x coordinates and mixed lengths", async () => {
    const shares = await splitSecret(SECRET, 3, 2, seededRandom(7));
    const refused = (err: unknown) => err instanceof RecoveryError && err.code === "InvalidShare";
    await assert.rejects(combineShares([shares[0]!, shares[0]!]), refused);
    const zeroX = Uint8Array.from(shares[1]!);
    zeroX[32] = 0;
    await assert.rejects(combineShares([shares[0]!, zeroX]), refused);
    await assert.rejects(combineShares([shares[0]!, shares[1]!.subarray(1)]), refused);
  });

  test("Buffers are accepted as shares", async () => {
    const shares = await splitSecret(SECRET, 3, 2, seededRandom(8));
    assert.deepEqual(await combineShares(shares.slice(1).map((s) => Buffer.from(s))), SECRET);
  });

  test("property: any k of n shares rebuild any secret; k - 1 do not", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 48 }),
        fc
          .integer({ min: 1, max: 12 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.integer({ min: 1, max: n }),
              fc.shuffledSubarray([...Array(n).keys()]),
            ),
          ),
        fc.integer(),
        async (secret, [n, k, order], seed) => {
          const shares = await splitSecret(secret, n, k, seededRandom(seed));
          const pick = [...order, ...[...Array(n).keys()].filter((i) => !order.includes(i))].slice(0, k);
          assert.deepEqual(await combineShares(pick.map((i) => shares[i]!)), secret);
          if (k >= 2 && secret.length >= 8) {
            // k - 1 shares interpolate to a value independent of the secret (a match is 2^-64).
            assert.notDeepEqual(await combineShares(pick.slice(1).map((i) => shares[i]!)), secret);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
