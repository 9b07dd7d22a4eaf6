/** The allocation-free helpers of the entry codec: same bytes as before, clear errors at the edges. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { aesGcmDecrypt, aesGcmEncrypt } from "../../src/crypto/index.ts";
import { putU32le, u32le } from "../../src/ledger/bytes.ts";
import { entryIv } from "../../src/ledger/entry.ts";

test("u32le and putU32le agree with Buffer's little-endian u32, anywhere in a view", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 4, maxLength: 40 }),
      fc.nat(),
      fc.nat(0xffffffff),
      (bytes, at, value) => {
        const offset = at % (bytes.length - 3);
        const view = bytes.subarray(0);
        assert.equal(u32le(view, offset), Buffer.from(view).readUInt32LE(offset));
        putU32le(view, offset, value);
        assert.equal(Buffer.from(view).readUInt32LE(offset), value);
        assert.equal(u32le(view, offset), value);
      },
    ),
    { numRuns: 300 },
  );
});

test("u32 helpers refuse offsets outside the bytes and values that are not u32", () => {
  const bytes = new Uint8Array(8);
  assert.throws(() => u32le(bytes, 5), RangeError);
  assert.throws(() => u32le(bytes, -1), RangeError);
  assert.throws(() => u32le(bytes.subarray(2), 3), /outside the 6 bytes/);
  assert.throws(() => putU32le(bytes, 6, 1), RangeError);
  assert.throws(() => putU32le(bytes, 0, 2 ** 32), /not a u32/);
  assert.throws(() => putU32le(bytes, 0, -1), /not a u32/);
  assert.deepEqual(bytes, new Uint8Array(8), "a refused write changes nothing");
});

test("entryIv is u64 LE seqno || u32 LE view, and refuses what does not fit", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.nat(0xffffffff), (seqno, view) => {
      const expected = Buffer.alloc(12);
      expected.writeUInt32LE(seqno % 2 ** 32, 0);
      expected.writeUInt32LE(Math.floor(seqno / 2 ** 32), 4);
      expected.writeUInt32LE(view, 8);
      assert.deepEqual(entryIv(seqno, view), new Uint8Array(expected));
    }),
    { numRuns: 300 },
  );
  assert.throws(() => entryIv(1, 2 ** 32), /does not fit the IV/);
  assert.throws(() => entryIv(-1, 1), /seqno/);
  assert.throws(() => entryIv(2 ** 53, 1), /seqno/);
});

test("decrypted plaintext is a plain Uint8Array with memory of its own", () => {
  const key = new Uint8Array(32).fill(1);
  const iv = new Uint8Array(12).fill(2);
  for (const size of [0, 1, 100, 70_000]) {
    const plaintext = new Uint8Array(size).map((_, i) => i & 0xff);
    const opened = aesGcmDecrypt(key, iv, aesGcmEncrypt(key, iv, plaintext));
    assert.deepEqual(opened, plaintext);
    assert.equal(Object.getPrototypeOf(opened), Uint8Array.prototype);
    assert.equal(opened.buffer.byteLength, size);
  }
});
