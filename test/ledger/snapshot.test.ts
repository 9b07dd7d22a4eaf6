import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import {
  decodeSnapshot,
  EntryType,
  encodeEntry,
  encodeSnapshot,
  LedgerError,
  LedgerSecrets,
  listSnapshots,
  type SnapshotAnchor,
  snapshotDigest,
  writeSnapshotFile,
} from "../../src/ledger/index.ts";
import { digest, enc, key, sampleEntry, tempDir } from "./helpers.ts";

const secrets = new LedgerSecrets([
  { version: 0, key: key(1) },
  { version: 50, key: key(2) },
  { version: 200, key: key(3) },
]);

function sampleSnapshot(version = 120): StoreSnapshot {
  return {
    version,
    maps: [
      { name: "accounts", entries: [[enc("alice"), enc("SECRET-BALANCE-100"), 7]] },
      {
        name: "public:ccf.gov.members.certs",
        entries: [
          [enc("m0"), enc("PUBLIC-CERT"), 1],
          [enc("m1"), enc("cert 1"), version],
        ],
      },
      { name: "\u{1F600}private", entries: [[new Uint8Array(0), new Uint8Array(0), 3]] },
    ],
  };
}

/** A well-formed anchor for a snapshot at `seqno` in `view`: views 1 and `view`, a real signature frame. */
function anchorFor(seqno: number, view: number): SnapshotAnchor {
  const size = seqno - 1;
  const hashes = Array.from({ length: size.toString(2).replace(/0/g, "").length }, (_, i) => digest(`h${i}`));
  return {
    treeFrontier: { size, hashes },
    viewHistory:
      view > 1 && seqno > 1
        ? [
            [1, 1],
            [view, seqno],
          ]
        : [[view, 1]],
    signatureFrame: encodeEntry(
      { ...sampleEntry(seqno, { view, type: EntryType.Signature, privateToo: false }), secretVersion: 0 },
      new LedgerSecrets([{ version: 0, key: key(1) }]),
    ),
  };
}

const encode = (snap: StoreSnapshot, view: number, s: LedgerSecrets) =>
  encodeSnapshot(snap, view, s, anchorFor(snap.version, view));

const plain = (s: StoreSnapshot) =>
  JSON.parse(JSON.stringify(s, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v)));

test("snapshots round-trip; private maps are encrypted with the secret in effect at their seqno", () => {
  const snap = sampleSnapshot();
  const bytes = encode(snap, 4, secrets);
  const { snapshot, view, secretVersion } = decodeSnapshot(bytes, secrets);
  assert.equal(view, 4);
  assert.equal(secretVersion, 50);
  assert.deepEqual(plain(snapshot), plain(snap));
  assert.deepEqual(encode(snap, 4, secrets), bytes, "the same state gives the same bytes");
  const text = Buffer.from(bytes).toString("latin1");
  assert.ok(text.includes("PUBLIC-CERT"));
  assert.ok(!text.includes("SECRET-BALANCE"));
  assert.ok(!text.includes("accounts"));
  assert.deepEqual(snapshotDigest(bytes), new Uint8Array(createHash("sha256").update(bytes).digest()));
});

test("a public-only snapshot needs no secret", () => {
  const snap: StoreSnapshot = {
    version: 3,
    maps: [{ name: "public:a", entries: [[enc("k"), enc("v"), 2]] }],
  };
  const bytes = encode(snap, 1, new LedgerSecrets());
  assert.deepEqual(plain(decodeSnapshot(bytes, new LedgerSecrets()).snapshot), plain(snap));
});

test("any changed byte, a wrong secret or a missing secret is refused", () => {
  const bytes = encode(sampleSnapshot(), 4, secrets);
  for (let i = 0; i < bytes.length; i++) {
    const bad = Buffer.from(bytes);
    bad[i]! ^= 0x04;
    assert.throws(() => decodeSnapshot(bad, secrets), LedgerError, `byte ${i}`);
  }
  const wrong = new LedgerSecrets([{ version: 50, key: key(9) }]);
  assert.throws(() => decodeSnapshot(bytes, wrong), /failed authentication/);
  assert.throws(() => decodeSnapshot(bytes, new LedgerSecrets()), /version 50 is not known/);
  assert.throws(() => decodeSnapshot(bytes.subarray(0, 20), secrets), LedgerError);
  assert.throws(() => decodeSnapshot(Buffer.concat([bytes, Buffer.alloc(1)]), secrets), /checksum/);
});

test("encode refuses snapshots that are not canonical", () => {
  const cases: Array<[string, StoreSnapshot]> = [
    [
      "unsorted keys",
      {
        version: 9,
        maps: [
          {
            name: "m",
            entries: [
              [enc("b"), enc(""), 1],
              [enc("a"), enc(""), 1],
            ],
          },
        ],
      },
    ],
    ["future version", { version: 9, maps: [{ name: "m", entries: [[enc("a"), enc(""), 10]] }] }],
    ["empty map", { version: 9, maps: [{ name: "m", entries: [] }] }],
    [
      "duplicate map",
      {
        version: 9,
        maps: [
          { name: "m", entries: [[enc("a"), enc(""), 1]] },
          { name: "m", entries: [[enc("b"), enc(""), 1]] },
        ],
      },
    ],
  ];
  for (const [what, snap] of cases) assert.throws(() => encode(snap, 1, secrets), LedgerError, what);
});

test("the anchor round-trips and a malformed one is refused", () => {
  const anchor = anchorFor(120, 4);
  const { anchor: back } = decodeSnapshot(encodeSnapshot(sampleSnapshot(), 4, secrets, anchor), secrets);
  assert.deepEqual(back.viewHistory, anchor.viewHistory);
  assert.deepEqual(back.treeFrontier.size, 119);
  assert.deepEqual(
    back.treeFrontier.hashes.map((h) => Buffer.from(h).toString("hex")),
    anchor.treeFrontier.hashes.map((h) => Buffer.from(h).toString("hex")),
  );
  assert.deepEqual(Buffer.from(back.signatureFrame), Buffer.from(anchor.signatureFrame));
  const bad: Array<[string, SnapshotAnchor]> = [
    ["frontier size", { ...anchor, treeFrontier: { size: 118, hashes: anchor.treeFrontier.hashes } }],
    ["hash count", { ...anchor, treeFrontier: { size: 119, hashes: anchor.treeFrontier.hashes.slice(1) } }],
    [
      "history order",
      {
        ...anchor,
        viewHistory: [
          [4, 1],
          [1, 120],
        ],
      },
    ],
    ["history start", { ...anchor, viewHistory: [[4, 2]] }],
    ["history view", { ...anchor, viewHistory: [[3, 1]] }],
    ["frame seqno", { ...anchor, signatureFrame: anchorFor(119, 4).signatureFrame }],
    ["frame type", { ...anchor, signatureFrame: encodeEntry(sampleEntry(120, { view: 4 }), secrets) }],
  ];
  for (const [what, a] of bad)
    assert.throws(() => encodeSnapshot(sampleSnapshot(), 4, secrets, a), /snapshot anchor/, what);
});

test("snapshot files are written atomically and only the newest two are kept", async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual(await listSnapshots(path.join(dir, "missing")), []);
  const written: string[] = [];
  for (const seqno of [10, 20, 30, 40]) {
    const bytes = encode(sampleSnapshot(seqno), 2, secrets);
    written.push(await writeSnapshotFile(dir, seqno, seqno + 2, bytes));
    assert.deepEqual(await fs.readFile(written.at(-1)!), Buffer.from(bytes));
  }
  await fs.writeFile(path.join(dir, "snapshot_50_52.tmp"), "left over by a crash");
  await fs.writeFile(path.join(dir, "ledger_1"), "not a snapshot");
  const listed = await listSnapshots(dir);
  assert.deepEqual(
    listed.map((s) => [s.seqno, s.evidenceSeqno, path.basename(s.path)]),
    [
      [40, 42, "snapshot_40_42.committed"],
      [30, 32, "snapshot_30_32.committed"],
    ],
  );
  assert.equal(listed[0]!.path, written[3]);
  const files = (await fs.readdir(dir)).sort();
  assert.deepEqual(files, [
    "ledger_1",
    "snapshot_30_32.committed",
    "snapshot_40_42.committed",
    "snapshot_50_52.tmp",
  ]);
  const { snapshot } = decodeSnapshot(await fs.readFile(listed[0]!.path), secrets);
  assert.equal(snapshot.version, 40);
});

test("writeSnapshotFile refuses mismatched seqnos", async (t) => {
  const dir = await tempDir(t);
  const bytes = encode(sampleSnapshot(10), 2, secrets);
  await assert.rejects(writeSnapshotFile(dir, 11, 12, bytes), /for seqno 10, not 11/);
  await assert.rejects(writeSnapshotFile(dir, 10, 10, bytes), /must come after/);
  await assert.rejects(writeSnapshotFile(dir, 10, 12, enc("junk junk junk junk")), /not a Coco snapshot/);
  assert.deepEqual(await fs.readdir(dir), []);
});
