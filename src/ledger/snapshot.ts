/**
 * Snapshot files: the whole store at one seqno, public maps in clear and private maps encrypted,
 * so a node can start (or catch up) without replaying the ledger from the beginning.
 *
 * Layout (little-endian; docs/ledger-format.md has the table):
 *   "COCOSNP" 0x02 | u64 seqno | u64 view | u64 secret version | u32 public size | public maps
 *   | u32 anchor size | anchor | u32 private size | private maps sealed with AES-256-GCM (0 bytes
 *   if none) | u32 CRC-32
 *
 * The anchor lets a node that has none of the ledger before the snapshot carry on from it: the
 * Merkle tree's frontier before the snapshot's signature entry, the first seqno of every view,
 * and that signature entry itself (which signs the frontier's root).
 */
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { sha256 } from "../crypto/index.ts";
import type { StoreSnapshot } from "../kv/index.ts";
import { seal, TAG_LENGTH, unseal } from "./aead.ts";
import { ByteReader, ByteWriter, checkU64, compareBytes, crc32, plainView, utf8Bytes } from "./bytes.ts";
import { type DecodedEntry, decodeEntry, EntryType } from "./entry.ts";
import { LedgerError } from "./errors.ts";
import { nodeIo } from "./io.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { isPublicMap, sortMapsByName } from "./writeset.ts";

export const SNAPSHOT_HEADER = Uint8Array.from([0x43, 0x4f, 0x43, 0x4f, 0x53, 0x4e, 0x50, 0x02]);
const HASH_SIZE = 32;

/** What a node needs besides the store to continue the ledger after a snapshot at `seqno`. */
export interface SnapshotAnchor {
  /** The Merkle tree of the `seqno - 1` leaves before the signature entry: its frontier hashes. */
  treeFrontier: { size: number; hashes: Uint8Array[] };
  /** `[view, first seqno]` for every view with entries up to the snapshot, oldest first. */
  viewHistory: Array<[number, number]>;
  /** The signature entry at the snapshot's seqno, as framed in the ledger. */
  signatureFrame: Uint8Array;
}
/** The IV's last 4 bytes: a view value entries never use, so snapshot and entry IVs never collide. */
const SNAPSHOT_IV_TAIL = 0xffffffff;
const SNAPSHOT_KEEP = 2;

type SnapshotMap = StoreSnapshot["maps"][number];

export function snapshotIv(seqno: number): Uint8Array {
  const w = new ByteWriter();
  w.u64(seqno);
  w.u32(SNAPSHOT_IV_TAIL);
  return w.finish();
}

function writeStoreMaps(maps: SnapshotMap[], seqno: number, w: ByteWriter): void {
  w.u32(maps.length);
  let previousName: Uint8Array | undefined;
  for (const map of maps) {
    const name = utf8Bytes(map.name, `map name ${JSON.stringify(map.name)}`);
    if (name.length === 0 || name.length > 0xffff)
      throw new LedgerError(`map name ${map.name} has a bad length`);
    if (previousName && compareBytes(previousName, name) === 0) {
      throw new LedgerError(`map ${map.name} appears twice in the snapshot`);
    }
    previousName = name;
    w.u16(name.length);
    w.bytes(name);
    if (!Array.isArray(map.entries) || map.entries.length === 0) {
      throw new LedgerError(`snapshot map ${map.name} has no entries (empty maps are left out)`);
    }
    w.u32(map.entries.length);
    let previousKey: Uint8Array | undefined;
    for (const [key, value, version] of map.entries) {
      if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
        throw new LedgerError(`snapshot map ${map.name}: keys and values must be bytes`);
      }
      if (previousKey && compareBytes(previousKey, key) >= 0) {
        throw new LedgerError(`snapshot map ${map.name}: keys must be strictly increasing`);
      }
      previousKey = key;
      checkU64(version, `snapshot map ${map.name}: version`);
      if (version > seqno)
        throw new LedgerError(`snapshot map ${map.name}: version ${version} is after the snapshot`);
      w.u32(key.length);
      w.bytes(key);
      w.u32(value.length);
      w.bytes(value);
      w.u64(version);
    }
  }
}

function readStoreMaps(r: ByteReader, domain: "public" | "private", seqno: number): SnapshotMap[] {
  const count = r.u32("map count");
  const maps: SnapshotMap[] = [];
  let previousName: Uint8Array | undefined;
  for (let m = 0; m < count; m++) {
    const at = r.pos;
    const length = r.u16("map name length");
    if (length === 0) r.fail("empty map name", at);
    const nameBytes = r.data.subarray(r.pos, r.pos + length);
    const name = r.utf8(length, "map name");
    if (isPublicMap(name) !== (domain === "public"))
      r.fail(`map ${name} does not belong in the ${domain} section`, at);
    if (previousName && compareBytes(previousName, nameBytes) >= 0)
      r.fail(`map ${name} is out of order or repeated`, at);
    previousName = nameBytes;
    const countAt = r.pos;
    const entryCount = r.u32("entry count");
    if (entryCount === 0) r.fail(`map ${name} has no entries`, countAt);
    const entries: SnapshotMap["entries"] = [];
    let previousKey: Uint8Array | undefined;
    for (let e = 0; e < entryCount; e++) {
      const keyAt = r.pos;
      const key = r.bytes(r.u32("key length"), "key");
      if (previousKey && compareBytes(previousKey, key) >= 0)
        r.fail(`map ${name}: key out of order or repeated`, keyAt);
      previousKey = key;
      const value = r.bytes(r.u32("value length"), "value");
      const versionAt = r.pos;
      const version = r.u64("version");
      if (version > seqno)
        r.fail(`map ${name}: version ${version} is after the snapshot seqno ${seqno}`, versionAt);
      entries.push([key, value, version]);
    }
    maps.push({ name, entries });
  }
  return maps;
}

/**
 * Encodes a snapshot given as plain maps: the format's reference encoder (tests, fuzz corpora and
 * tools build snapshots with it). Nodes encode straight from their store with SnapshotEncoder
 * (snapshot-encoder.ts), which writes the same bytes with fewer copies and in slices. Private maps
 * are sealed with the ledger secret in effect at the snapshot's seqno, so two nodes snapshotting
 * the same state write the same bytes.
 */
export function encodeSnapshot(
  snap: StoreSnapshot,
  view: number,
  secrets: LedgerSecrets,
  anchor: SnapshotAnchor,
): Uint8Array {
  checkU64(snap.version, "snapshot seqno");
  checkU64(view, "view");
  const anchorBytes = encodeAnchor(anchor, snap.version, view);
  const maps = sortMapsByName([...snap.maps]);
  const publicMaps = maps.filter((m) => isPublicMap(m.name));
  const privateMaps = maps.filter((m) => !isPublicMap(m.name));

  const pub = new ByteWriter();
  writeStoreMaps(publicMaps, snap.version, pub);
  let plaintext: Uint8Array | undefined;
  if (privateMaps.length > 0) {
    const priv = new ByteWriter();
    writeStoreMaps(privateMaps, snap.version, priv);
    plaintext = priv.finish();
  }
  const secret = plaintext ? secrets.forSeqno(snap.version) : undefined;

  const out = new ByteWriter();
  out.bytes(SNAPSHOT_HEADER);
  out.u64(snap.version);
  out.u64(view);
  out.u64(secret?.version ?? 0);
  out.u32(pub.length);
  out.bytes(pub.finish());
  out.u32(anchorBytes.length);
  out.bytes(anchorBytes);
  out.u32(plaintext ? plaintext.length + TAG_LENGTH : 0);
  if (plaintext && secret) {
    out.bytes(seal(secret.key, snapshotIv(snap.version), plaintext, out.finish()));
  }
  const body = out.finish();
  const file = new ByteWriter();
  file.bytes(body);
  file.u32(crc32(body));
  return file.finish();
}

export function decodeSnapshot(
  input: Uint8Array,
  secrets: LedgerSecrets,
): { snapshot: StoreSnapshot; view: number; secretVersion: number; anchor: SnapshotAnchor } {
  if (!(input instanceof Uint8Array)) throw new LedgerError("snapshot must be a Uint8Array");
  const bytes = plainView(input);
  const r = new ByteReader(bytes, "snapshot");
  if (bytes.length < SNAPSHOT_HEADER.length + 4 || !SNAPSHOT_HEADER.every((b, i) => bytes[i] === b)) {
    r.fail("not a Coco snapshot (bad file header)", 0);
  }
  const body = bytes.subarray(0, bytes.length - 4);
  if (crc32(body) !== new ByteReader(bytes.subarray(bytes.length - 4), "snapshot").u32("checksum")) {
    r.fail("checksum mismatch", bytes.length - 4);
  }
  const b = new ByteReader(body, "snapshot");
  b.bytes(SNAPSHOT_HEADER.length, "header");
  const seqno = b.u64("seqno");
  const view = b.u64("view");
  const secretVersion = b.u64("secret version");
  const publicLength = b.u32("public size");
  const publicStart = b.pos;
  const publicReader = new ByteReader(b.bytes(publicLength, "public section"), "snapshot", publicStart);
  const publicMaps = readStoreMaps(publicReader, "public", seqno);
  publicReader.end();
  const anchorLength = b.u32("anchor size");
  const anchorStart = b.pos;
  const anchorReader = new ByteReader(b.bytes(anchorLength, "anchor section"), "snapshot", anchorStart);
  const anchor = decodeAnchor(anchorReader, seqno, view);
  const privateAt = b.pos;
  const privateLength = b.u32("private size");
  const aad = body.subarray(0, b.pos);
  const sealed = b.bytes(privateLength, "private section");
  b.end();
  let privateMaps: SnapshotMap[] = [];
  if (privateLength === 0 && secretVersion !== 0) b.fail("secret version set but no private section", 24);
  if (privateLength > 0) {
    if (secretVersion > seqno) b.fail(`secret version ${secretVersion} is after the snapshot seqno`, 24);
    const plaintext = unseal(
      secrets.get(secretVersion),
      snapshotIv(seqno),
      sealed,
      aad,
      "snapshot private section",
    );
    const pr = new ByteReader(plaintext, "snapshot private section");
    privateMaps = readStoreMaps(pr, "private", seqno);
    pr.end();
    if (privateMaps.length === 0) b.fail("private section holds no maps", privateAt);
  }
  return {
    snapshot: { version: seqno, maps: sortMapsByName([...publicMaps, ...privateMaps]) },
    view,
    secretVersion,
    anchor,
  };
}

function popcount(n: number): number {
  return n.toString(2).replace(/0/g, "").length;
}

export function encodeAnchor(anchor: SnapshotAnchor, seqno: number, view: number): Uint8Array {
  const { treeFrontier, viewHistory, signatureFrame } = anchor;
  if (seqno < 1)
    throw new LedgerError("a snapshot is taken at a signature entry, so its seqno is at least 1");
  if (treeFrontier.size !== seqno - 1 || treeFrontier.hashes.length !== popcount(treeFrontier.size)) {
    throw new LedgerError(`snapshot anchor: the tree frontier must cover the ${seqno - 1} entries before it`);
  }
  checkViewHistory(viewHistory, seqno, view, (m) => {
    throw new LedgerError(`snapshot anchor: ${m}`);
  });
  checkSignatureFrame(signatureFrame, seqno, view, (m) => {
    throw new LedgerError(`snapshot anchor: ${m}`);
  });
  const w = new ByteWriter();
  w.u64(treeFrontier.size);
  w.u32(treeFrontier.hashes.length);
  for (const hash of treeFrontier.hashes) {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_SIZE)
      throw new LedgerError("snapshot anchor: frontier hashes are 32 bytes");
    w.bytes(hash);
  }
  w.u32(viewHistory.length);
  for (const [v, first] of viewHistory) {
    w.u64(v);
    w.u64(first);
  }
  w.u32(signatureFrame.length);
  w.bytes(signatureFrame);
  return w.finish();
}

function decodeAnchor(r: ByteReader, seqno: number, view: number): SnapshotAnchor {
  const size = r.u64("tree size");
  if (size !== seqno - 1) r.fail(`tree size ${size} is not the ${seqno - 1} entries before the snapshot`);
  const count = r.u32("frontier hash count");
  if (count !== popcount(size))
    r.fail(`a tree of ${size} leaves has ${popcount(size)} frontier hashes, not ${count}`);
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < count; i++) hashes.push(Uint8Array.from(r.bytes(HASH_SIZE, "frontier hash")));
  const views = r.u32("view count");
  const viewHistory: Array<[number, number]> = [];
  for (let i = 0; i < views; i++) viewHistory.push([r.u64("view"), r.u64("first seqno of view")]);
  checkViewHistory(viewHistory, seqno, view, (m) => r.fail(m));
  const frameLength = r.u32("signature entry size");
  const signatureFrame = Uint8Array.from(r.bytes(frameLength, "signature entry"));
  r.end();
  checkSignatureFrame(signatureFrame, seqno, view, (m) => r.fail(m));
  return { treeFrontier: { size, hashes }, viewHistory, signatureFrame };
}

function checkViewHistory(
  history: Array<[number, number]>,
  seqno: number,
  view: number,
  fail: (message: string) => never,
): void {
  if (history.length === 0) fail("the view history is empty");
  let previous: [number, number] | undefined;
  for (const [v, first] of history) {
    if (!Number.isSafeInteger(v) || !Number.isSafeInteger(first) || first < 1 || first > seqno)
      fail(`view history entry [${v}, ${first}] is out of range`);
    if (previous && (v <= previous[0] || first <= previous[1]))
      fail("view history must increase in both views and seqnos");
    previous = [v, first];
  }
  if (history[0]![1] !== 1) fail("view history must start at seqno 1");
  if (previous![0] !== view)
    fail(`view history ends in view ${previous![0]}, not the snapshot's view ${view}`);
}

function checkSignatureFrame(
  frame: Uint8Array,
  seqno: number,
  view: number,
  fail: (message: string) => never,
): void {
  let entry: DecodedEntry;
  try {
    entry = decodeEntry(frame);
  } catch (e) {
    fail(`signature entry does not decode: ${(e as Error).message}`);
  }
  if (entry.seqno !== seqno || entry.view !== view || entry.type !== EntryType.Signature) {
    fail(`the anchor entry is ${entry.view}.${entry.seqno}, not the signature at ${view}.${seqno}`);
  }
}

/** SHA-256 of the snapshot file's bytes, the digest the node records in the ledger as evidence. */
export function snapshotDigest(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

const SNAPSHOT_NAME = /^snapshot_(0|[1-9][0-9]{0,15})_(0|[1-9][0-9]{0,15})\.committed$/;

/** Committed snapshots in `dir`, newest first. Temporary and unrelated files are ignored. */
export async function listSnapshots(
  dir: string,
): Promise<Array<{ path: string; seqno: number; evidenceSeqno: number }>> {
  let files: string[];
  try {
    files = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const found: Array<{ path: string; seqno: number; evidenceSeqno: number }> = [];
  for (const file of files) {
    const match = SNAPSHOT_NAME.exec(file);
    if (!match) continue;
    const seqno = Number(match[1]);
    const evidenceSeqno = Number(match[2]);
    if (Number.isSafeInteger(seqno) && Number.isSafeInteger(evidenceSeqno)) {
      found.push({ path: path.join(dir, file), seqno, evidenceSeqno });
    }
  }
  return found.sort((a, b) => b.seqno - a.seqno || b.evidenceSeqno - a.evidenceSeqno);
}

/**
 * Writes a snapshot atomically (temporary file, sync, rename, sync the directory), then deletes all
 * but the newest two. Returns the final path.
 */
export async function writeSnapshotFile(
  dir: string,
  seqno: number,
  evidenceSeqno: number,
  bytes: Uint8Array,
): Promise<string> {
  checkU64(seqno, "snapshot seqno");
  checkU64(evidenceSeqno, "snapshot evidence seqno");
  if (evidenceSeqno <= seqno) {
    throw new LedgerError(
      `snapshot evidence seqno ${evidenceSeqno} must come after the snapshot seqno ${seqno}`,
    );
  }
  const header = new ByteReader(bytes, "snapshot");
  if (bytes.length < 16 || !SNAPSHOT_HEADER.every((b, i) => bytes[i] === b))
    header.fail("not a Coco snapshot", 0);
  header.pos = SNAPSHOT_HEADER.length;
  const inside = header.u64("seqno");
  if (inside !== seqno) throw new LedgerError(`snapshot bytes are for seqno ${inside}, not ${seqno}`);

  await fs.mkdir(dir, { recursive: true });
  const name = `snapshot_${seqno}_${evidenceSeqno}`;
  const tmp = path.join(dir, `${name}.tmp`);
  const final = path.join(dir, `${name}.committed`);
  const handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, final);
  await nodeIo.syncDir(dir);
  const old = (await listSnapshots(dir)).slice(SNAPSHOT_KEEP);
  for (const snapshot of old) await fs.unlink(snapshot.path);
  if (old.length > 0) await nodeIo.syncDir(dir);
  return final;
}
