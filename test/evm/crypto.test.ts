import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { bigIntToUnpaddedBytes, ecrecover as jsEcrecover, KECCAK256_NULL } from "@ethereumjs/util";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 as nobleKeccak256 } from "@noble/hashes/sha3.js";
import { ecrecover, SENDER_RECOVERY } from "../../src/evm/crypto.ts";
import { KECCAK, keccak256 } from "../../src/evm/keccak.ts";

const N = secp256k1.Point.CURVE().n;

function signed(chainId?: bigint) {
  const key = secp256k1.utils.randomSecretKey();
  const hash = new Uint8Array(randomBytes(32));
  const sig = secp256k1.Signature.fromBytes(
    secp256k1.sign(hash, key, { prehash: false, format: "recovered" }),
    "recovered",
  );
  const recovery = BigInt(sig.recovery!);
  const v = chainId === undefined ? 27n + recovery : chainId * 2n + 35n + recovery;
  return {
    hash,
    v,
    r: bigIntToUnpaddedBytes(sig.r),
    s: bigIntToUnpaddedBytes(sig.s),
    publicKey: secp256k1.getPublicKey(key, false).subarray(1),
  };
}

test("the prebuilt libsecp256k1 binding is the one in use on linux-x64", {
  skip: !(process.platform === "linux" && process.arch === "x64"),
}, () => {
  assert.equal(SENDER_RECOVERY, "native");
});

test("ecrecover answers as @ethereumjs/util's: legacy v, EIP-155 v and typed transactions' 0/1", () => {
  for (let i = 0; i < 50; i++) {
    for (const chainId of [undefined, 0xc0c0n]) {
      const { hash, v, r, s, publicKey } = signed(chainId);
      assert.deepEqual(ecrecover(hash, v, r, s, chainId), publicKey);
      assert.deepEqual(ecrecover(hash, v, r, s, chainId), jsEcrecover(hash, v, r, s, chainId));
      const parity = chainId === undefined ? v - 27n : v - chainId * 2n - 35n;
      assert.deepEqual(ecrecover(hash, parity, r, s), publicKey);
    }
  }
});

test("ecrecover refuses what @ethereumjs/util refuses: bad v, zero or out-of-range r and s", () => {
  const { hash, v, r, s } = signed();
  const refusedByBoth = (v2: bigint, r2: Uint8Array, s2: Uint8Array, chainId?: bigint) => {
    assert.throws(() => jsEcrecover(hash, v2, r2, s2, chainId));
    assert.throws(() => ecrecover(hash, v2, r2, s2, chainId));
  };
  refusedByBoth(29n, r, s);
  refusedByBoth(v, r, s, 1n);
  refusedByBoth(v, new Uint8Array(0), s);
  refusedByBoth(v, r, new Uint8Array(0));
  refusedByBoth(v, bigIntToUnpaddedBytes(N), s);
  refusedByBoth(v, r, bigIntToUnpaddedBytes(N + 1n));
  assert.throws(() => ecrecover(hash, v, new Uint8Array(33).fill(1), s));
});

test("keccak-256 is the `keccak` package's prebuilt addon on linux-x64, and answers as @noble/hashes", () => {
  if (process.platform === "linux" && process.arch === "x64") assert.equal(KECCAK, "native");
  for (const length of [0, 1, 31, 32, 33, 135, 136, 137, 272, 1000, 24_576]) {
    const data = new Uint8Array(randomBytes(length));
    assert.deepEqual(keccak256(data), nobleKeccak256(data), `length ${length}`);
    // A view into a larger buffer hashes only its own bytes.
    const wide = new Uint8Array(length + 16);
    wide.set(data, 8);
    assert.deepEqual(keccak256(wide.subarray(8, 8 + length)), nobleKeccak256(data));
  }
  // Each hash starts afresh: one hash's input never leaks into the next.
  assert.deepEqual(keccak256(new Uint8Array(0)), KECCAK256_NULL);
});
