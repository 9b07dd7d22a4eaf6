import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { test } from "node:test";
import zlib from "node:zlib";
import fc from "fast-check";
import type { WriteSet } from "../../src/kv/index.ts";
import {
  decodeEntry,
  decryptEntry,
  type Entry,
  EntryType,
  encodeEntry,
  LedgerError,
  LedgerSecrets,
} from "../../src/ledger/index.ts";
import { digest, enc, key, sampleEntry, testSecrets } from "./helpers.ts";

const byteCompare = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b);

/** Random write sets in canonical form: maps by UTF-8 name, updates by key, no empty maps. */
const writeSetArb: fc.Arbitrary<WriteSet> = fc
  .uniqueArray(
    fc.record({
      name: fc.oneof(
        fc.string({ minLength: 1, maxLength: 8 }).map((s) => `public:${s}`),
        fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !s.startsWith("public:")),
        fc.constantFrom("é", "日本", "😀x", "a\u{10000}"),
      ),
      updates: fc.uniqueArray(
        fc.record({
          key: fc.uint8Array({ maxLength: 12 }),
          value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
        }),
        { minLength: 1, maxLength: 6, selector: (u) => Buffer.from(u.key).toString("hex") },
      ),
    }),
    { maxLength: 6, selector: (m) => m.name },
  )
  .map((maps) =>
    maps
      .map((m) => ({ name: m.name, updates: [...m.updates].sort((a, b) => byteCompare(a.key, b.key)) }))
      .sort((a, b) => byteCompare(enc(a.name), enc(b.name))),
  );

const entryArb: fc.Arbitrary<Entry> = fc
  .record({
    seqno: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    view: fc.integer({ min: 0, max: 0xfffffffe }),
    type: fc.constantFrom(EntryType.WriteSet, EntryType.Signature),
    claimsDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    commitEvidenceDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    writeSet: writeSetArb,
    useSecond: fc.boolean(),
  })
  .map(({ useSecond, ...e }) => ({ ...e, secretVersion: useSecond ? Math.min(e.seqno, 10) : 0 }));

function secretsPair(): LedgerSecrets {
  return new LedgerSecrets([
    { version: 0, key: key(1) },
    { version: 10, key: key(2) },
    ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => ({ version: v, key: key(100 + v) })),
  ]);
}

/** The same frame with its CRC recomputed, as an attacker (not a torn write) would leave it. */
function refreshCrc(frame: Uint8Array): Uint8Array {
  const out = Buffer.from(frame);
  out.writeUInt32LE(zlib.crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

test("encode, decode and decrypt round-trip any write set", () => {
  const secrets = secretsPair();
  fc.assert(
    fc.property(entryArb, (entry) => {
      const frame = encodeEntry(entry, secrets);
      const decoded = decodeEntry(frame);
      assert.equal(decoded.seqno, entry.seqno);
      assert.equal(decoded.view, entry.view);
      assert.equal(decoded.type, entry.type);
      assert.equal(decoded.secretVersion, entry.secretVersion);
      assert.deepEqual(decoded.claimsDigest, entry.claimsDigest);
      assert.deepEqual(decoded.commitEvidenceDigest, entry.commitEvidenceDigest);
      const publicMaps = entry.writeSet.filter((m) => m.name.startsWith("public:"));
      assert.deepEqual(normalize(decoded.publicWriteSet), normalize(publicMaps));
      assert.equal(decoded.hasPrivate, publicMaps.length !== entry.writeSet.length);
      assert.deepEqual(normalize(decryptEntry(decoded, secrets)), normalize(entry.writeSet));
      // Canonical: the same entry always gives the same bytes.
      assert.deepEqual(encodeEntry(entry, secrets), frame);
      // write_set_digest is SHA-256 of everything between the 12-byte header and the CRC.
      const expected = createHash("sha256")
        .update(frame.subarray(12, frame.length - 4))
        .digest();
      assert.deepEqual(Buffer.from(decoded.writeSetDigest), expected);
    }),
    { numRuns: 300 },
  );
});

/** Plain arrays so deepEqual compares contents, not Buffer-vs-Uint8Array classes. */
function normalize(ws: WriteSet) {
  return ws.map((m) => ({
    name: m.name,
    updates: m.updates.map((u) => ({ key: [...u.key], value: u.value === null ? null : [...u.value] })),
  }));
}

test("maps given out of order are written in UTF-8 byte order", () => {
  const secrets = testSecrets();
  const entry = sampleEntry(3);
  // "\uFFFF" sorts before "\u{10000}" in UTF-16 but after it in UTF-8.
  entry.writeSet = [
    { name: "public:\uffff", updates: [{ key: enc("a"), value: null }] },
    { name: "public:\u{10000}", updates: [{ key: enc("a"), value: enc("b") }] },
  ];
  const decoded = decodeEntry(encodeEntry(entry, secrets));
  assert.deepEqual(
    decoded.publicWriteSet.map((m) => m.name),
    ["public:\uffff", "public:\u{10000}"],
  );
});

test("flipping any bit of a frame is detected by decode", () => {
  const secrets = testSecrets();
  const frame = encodeEntry(sampleEntry(42), secrets);
  for (let i = 0; i < frame.length; i++) {
    const bad = Buffer.from(frame);
    bad[i]! ^= 1 << (i % 8);
    assert.throws(() => decodeEntry(bad), LedgerError, `byte ${i}`);
  }
});

test("changing any byte of an encrypted entry, even with a fresh checksum, fails decode or decrypt", () => {
  const secrets = testSecrets();
  const frame = encodeEntry(sampleEntry(42), secrets);
  for (let i = 0; i < frame.length - 4; i++) {
    const bad = Buffer.from(frame);
    bad[i]! ^= 0x80;
    const tampered = refreshCrc(bad);
    assert.throws(() => decryptEntry(decodeEntry(tampered), secrets), LedgerError, `byte ${i}`);
  }
});

test("the public domain cannot be moved onto another entry's private domain", () => {
  const secrets = testSecrets();
  const a = encodeEntry(sampleEntry(5), secrets);
  const b = encodeEntry(sampleEntry(6), secrets);
  const publicEnd = 12 + Buffer.from(a).readUInt32LE(8);
  assert.equal(publicEnd, 12 + Buffer.from(b).readUInt32LE(8));
  const spliced = refreshCrc(Buffer.concat([a.subarray(0, publicEnd), b.subarray(publicEnd)]));
  assert.throws(() => decryptEntry(decodeEntry(spliced), secrets), /failed authentication/);
});

test("a wrong or unknown secret cannot decrypt, but decode needs no secret", () => {
  const frame = encodeEntry(sampleEntry(9), testSecrets());
  const decoded = decodeEntry(frame);
  assert.throws(
    () => decryptEntry(decoded, new LedgerSecrets([{ version: 0, key: key(8) }])),
    /failed authentication/,
  );
  assert.throws(() => decryptEntry(decoded, new LedgerSecrets()), /version 0 is not known/);
});

test("private values never appear in the frame; public values do", () => {
  const secrets = testSecrets();
  const entry = sampleEntry(11);
  entry.writeSet = [
    { name: "public:shown", updates: [{ key: enc("k"), value: enc("PUBLIC-VISIBLE-VALUE") }] },
    { name: "hidden", updates: [{ key: enc("TOP-SECRET-KEY"), value: enc("TOP-SECRET-MARKER") }] },
  ];
  const text = Buffer.from(encodeEntry(entry, secrets)).toString("latin1");
  assert.ok(text.includes("PUBLIC-VISIBLE-VALUE"));
  assert.ok(text.includes("public:shown"));
  assert.ok(!text.includes("TOP-SECRET"));
  assert.ok(!text.includes("hidden"));
});

test("an entry with only public maps has no private domain and needs no secret", () => {
  const entry = sampleEntry(4, { privateToo: false });
  const frame = encodeEntry(entry, new LedgerSecrets());
  const decoded = decodeEntry(frame);
  assert.equal(decoded.hasPrivate, false);
  assert.equal(frame[1], 0);
  assert.deepEqual(normalize(decryptEntry(decoded, new LedgerSecrets())), normalize(entry.writeSet));
});

test("encode refuses entries it could not write canonically or safely", () => {
  const secrets = testSecrets();
  const bad: Array<[string, (e: Entry) => void]> = [
    ["seqno 0", (e) => (e.seqno = 0)],
    ["seqno above 2^53-1", (e) => (e.seqno = 2 ** 53)],
    ["fractional view", (e) => (e.view = 1.5)],
    ["view too large for the IV", (e) => (e.view = 0xffffffff)],
    ["secret after seqno", (e) => (e.secretVersion = e.seqno + 1)],
    ["unknown type", (e) => (e.type = 7 as EntryType)],
    ["short claims digest", (e) => (e.claimsDigest = new Uint8Array(31))],
    ["long evidence digest", (e) => (e.commitEvidenceDigest = new Uint8Array(33))],
    ["unknown secret", (e) => (e.secretVersion = 3)],
    [
      "unsorted keys",
      (e) =>
        (e.writeSet[0]!.updates = [
          { key: enc("b"), value: null },
          { key: enc("a"), value: null },
        ]),
    ],
    [
      "duplicate keys",
      (e) =>
        (e.writeSet[0]!.updates = [
          { key: enc("a"), value: null },
          { key: enc("a"), value: enc("x") },
        ]),
    ],
    ["duplicate map", (e) => e.writeSet.push({ ...e.writeSet[0]! })],
    ["empty map", (e) => e.writeSet.push({ name: "public:empty", updates: [] })],
    ["empty name", (e) => e.writeSet.push({ name: "", updates: [{ key: enc("a"), value: null }] })],
    [
      "lone surrogate",
      (e) => e.writeSet.push({ name: "x\ud800", updates: [{ key: enc("a"), value: null }] }),
    ],
  ];
  for (const [what, mutate] of bad) {
    const entry = sampleEntry(5);
    mutate(entry);
    assert.throws(() => encodeEntry(entry, secrets), LedgerError, what);
  }
  // A large view is fine when there is nothing to encrypt.
  const big = sampleEntry(5, { privateToo: false, view: 2 ** 40 });
  assert.equal(decodeEntry(encodeEntry(big, secrets)).view, 2 ** 40);
});

test("decode names what is wrong", () => {
  const frame = encodeEntry(sampleEntry(8), testSecrets());
  assert.throws(() => decodeEntry(frame.subarray(0, 50)), /shorter than the minimum/);
  assert.throws(() => decodeEntry(Buffer.concat([frame, Buffer.alloc(1)])), /frame size field says/);
  const v2 = Buffer.from(frame);
  v2[0] = 2;
  assert.throws(() => decodeEntry(refreshCrc(v2)), /unknown entry format version 2/);
  const flags = Buffer.from(frame);
  flags[1] = 0x03;
  assert.throws(() => decodeEntry(refreshCrc(flags)), /unknown flag bits/);
  const type = Buffer.from(frame);
  type[12 + 16] = 9;
  assert.throws(
    () => decodeEntry(refreshCrc(type)),
    (e: LedgerError) => e.seqno === 8 && /entry type 9/.test(e.message),
  );
  const seqno = Buffer.from(frame);
  seqno.writeUInt32LE(0x00200000, 12 + 4);
  assert.throws(() => decodeEntry(refreshCrc(seqno)), /seqno exceeds 2\^53-1/);
  const crc = Buffer.from(frame);
  crc[crc.length - 1]! ^= 1;
  assert.throws(() => decodeEntry(crc), /checksum mismatch/);
});

test("decode rejects a public map name that is not UTF-8 or not sorted", () => {
  const secrets = testSecrets();
  const entry = sampleEntry(3, { privateToo: false });
  entry.writeSet = [
    { name: "public:a", updates: [{ key: enc("k"), value: null }] },
    { name: "public:b", updates: [{ key: enc("k"), value: null }] },
  ];
  const frame = Buffer.from(encodeEntry(entry, secrets));
  const at = frame.indexOf("public:b");
  const swapped = Buffer.from(frame);
  swapped[at + 7] = "a".charCodeAt(0);
  assert.throws(() => decodeEntry(refreshCrc(swapped)), /out of order or repeated/);
  const invalid = Buffer.from(frame);
  invalid[at + 7] = 0xff;
  assert.throws(() => decodeEntry(refreshCrc(invalid)), /not valid UTF-8/);
  const privateName = Buffer.from(frame);
  privateName.write("xublic:", at);
  assert.throws(() => decodeEntry(refreshCrc(privateName)), /does not belong in the public domain/);
});

test("entries under different secrets use the secret their version names", () => {
  const secrets = new LedgerSecrets([
    { version: 0, key: key(1) },
    { version: 20, key: key(2) },
  ]);
  const old = { ...sampleEntry(19), secretVersion: 0 };
  const fresh = { ...sampleEntry(21), secretVersion: 20 };
  const onlyOld = new LedgerSecrets([{ version: 0, key: key(1) }]);
  assert.equal(decryptEntry(decodeEntry(encodeEntry(old, secrets)), onlyOld).length, 2);
  assert.throws(
    () => decryptEntry(decodeEntry(encodeEntry(fresh, secrets)), onlyOld),
    /version 20 is not known/,
  );
  assert.deepEqual(digest("x").length, 32);
});
