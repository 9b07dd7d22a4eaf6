/**
 * Encodes a snapshot file straight from an immutable version of the store, in steps of bounded
 * work, so a node can spread it over many turns of its event loop (src/node/snapshot-job.ts).
 *
 * The bytes are exactly those of `encodeSnapshot` (snapshot.ts, the format's reference encoder;
 * docs/ledger-format.md section 6), built with fewer copies: a first pass adds up the sections'
 * sizes, then every key and value is written once, straight from the store's latin1 strings, into
 * one buffer of the final size. The private section is encrypted in place as it is written
 * (AES-GCM streams), and the CRC-32 and the SHA-256 digest (the snapshot evidence) follow the
 * finished bytes step by step, while they are still in cache.
 */
import { Buffer } from "node:buffer";
import { type CipherGCM, createCipheriv, createHash, type Hash } from "node:crypto";
import zlib from "node:zlib";
import type { EntryCursor, StoreVersion } from "../kv/index.ts";
import { TAG_LENGTH } from "./aead.ts";
import { checkU64, crc32 } from "./bytes.ts";
import { LedgerError } from "./errors.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { encodeAnchor, SNAPSHOT_HEADER, type SnapshotAnchor, snapshotIv } from "./snapshot.ts";
import { isPublicMap } from "./writeset.ts";

const TWO_32 = 2 ** 32;
/** Per entry: u32 key length, u32 value length, u64 version. */
const ENTRY_OVERHEAD = 16;
/** zlib.crc32 takes a running value from Node 20.15; before that the CRC is taken at the end. */
const incrementalCrc = typeof zlib.crc32 === "function";

export interface EncodedSnapshot {
  bytes: Uint8Array;
  /** SHA-256 of `bytes` (what `snapshotDigest` gives): the evidence recorded in the ledger. */
  digest: Uint8Array;
}

/** What a snapshot at `source.version` is made of, all fixed when the snapshot is begun. */
export interface SnapshotSource {
  store: StoreVersion;
  view: number;
  anchor: SnapshotAnchor;
}

interface MapPlan {
  index: number;
  name: Buffer;
}

type Phase = "size" | "public" | "private" | "done";

export class SnapshotEncoder {
  private phase: Phase = "size";
  private readonly seqno: number;
  private readonly anchorBytes: Uint8Array;
  private readonly publicMaps: MapPlan[] = [];
  private readonly privateMaps: MapPlan[] = [];
  private readonly secret: { version: number; key: Uint8Array } | undefined;
  /** The map being walked (index into the phase's list) and where in it. */
  private mapAt = 0;
  private cursor: EntryCursor | undefined;
  private publicSize = 4;
  private privateSize = 4;
  private out: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes before this offset are final (encrypted where they must be) and fed to the digests. */
  private finalTo = 0;
  private cipher: CipherGCM | undefined;
  private readonly hash: Hash = createHash("sha256");
  private crc = 0;
  private result: EncodedSnapshot | undefined;

  constructor(
    private readonly source: SnapshotSource,
    secrets: LedgerSecrets,
  ) {
    const { store, view, anchor } = source;
    this.seqno = store.version;
    checkU64(this.seqno, "snapshot seqno");
    checkU64(view, "view");
    this.anchorBytes = encodeAnchor(anchor, this.seqno, view);
    store.maps.forEach((m, index) => {
      const name = Buffer.from(m.name, "utf8");
      if (name.length === 0 || name.length > 0xffff)
        throw new LedgerError(`map name ${m.name} has a bad length`);
      (isPublicMap(m.name) ? this.publicMaps : this.privateMaps).push({ index, name });
    });
    this.secret = this.privateMaps.length > 0 ? secrets.forSeqno(this.seqno) : undefined;
  }

  get done(): boolean {
    return this.phase === "done";
  }

  /**
   * Does about `budget` entries' worth of work (each entry is visited twice: once to size it,
   * once to write it); returns true once the snapshot is complete.
   */
  step(budget: number): boolean {
    let left = budget;
    while (left > 0 && this.phase !== "done") {
      if (this.phase === "size") left = this.sizeSome(left);
      else left = this.writeSome(left);
    }
    if (this.phase !== "size") this.settle();
    return this.phase === "done";
  }

  /** The file and its digest, once `step` returned true. */
  encoded(): EncodedSnapshot {
    if (!this.result) throw new LedgerError("the snapshot is not encoded yet");
    return this.result;
  }

  private mapsOf(phase: Phase): MapPlan[] {
    return phase === "private" ? this.privateMaps : this.publicMaps;
  }

  /** The sizing pass: both sections in turn (the private maps after the public ones). */
  private sizeSome(budget: number): number {
    const all = this.publicMaps.length + this.privateMaps.length;
    let left = budget;
    while (left > 0 && this.mapAt < all) {
      const isPublic = this.mapAt < this.publicMaps.length;
      const plan = isPublic
        ? this.publicMaps[this.mapAt]!
        : this.privateMaps[this.mapAt - this.publicMaps.length]!;
      if (!this.cursor) {
        this.cursor = this.source.store.cursor(plan.index);
        const header = 2 + plan.name.length + 4;
        if (isPublic) this.publicSize += header;
        else this.privateSize += header;
      }
      const c = this.cursor;
      let bytes = 0;
      while (left > 0 && c.next()) {
        bytes += ENTRY_OVERHEAD + c.key.length + c.value.length;
        left--;
      }
      if (isPublic) this.publicSize += bytes;
      else this.privateSize += bytes;
      if (left > 0) {
        this.cursor = undefined;
        this.mapAt++;
      }
    }
    if (this.mapAt === all) this.begin();
    return left;
  }

  /** Sizes known: allocates the file and writes everything up to the first public entry. */
  private begin(): void {
    const hasPrivate = this.privateMaps.length > 0;
    const total =
      SNAPSHOT_HEADER.length +
      24 +
      4 +
      this.publicSize +
      4 +
      this.anchorBytes.length +
      4 +
      (hasPrivate ? this.privateSize + TAG_LENGTH : 0) +
      4;
    // Not zeroed (that alone is a pause of milliseconds for a large store): every byte is written
    // in sequence from offset 0, and `finish` refuses a file whose end is not where sizing said.
    this.out = Buffer.allocUnsafeSlow(total);
    this.out.set(SNAPSHOT_HEADER, 0);
    this.pos = SNAPSHOT_HEADER.length;
    this.u64(this.seqno);
    this.u64(this.source.view);
    this.u64(this.secret?.version ?? 0);
    this.u32(this.publicSize);
    this.u32(this.publicMaps.length);
    this.phase = "public";
    this.mapAt = 0;
    this.cursor = undefined;
  }

  private writeSome(budget: number): number {
    let left = budget;
    const maps = this.mapsOf(this.phase);
    while (left > 0 && this.mapAt < maps.length) {
      const plan = maps[this.mapAt]!;
      if (!this.cursor) {
        this.cursor = this.source.store.cursor(plan.index);
        this.u16(plan.name.length);
        this.out.set(plan.name, this.pos);
        this.pos += plan.name.length;
        this.u32(this.source.store.maps[plan.index]!.size);
      }
      const c = this.cursor;
      const out = this.out;
      const seqno = this.seqno;
      while (left > 0 && c.next()) {
        if (c.written > seqno) {
          const name = this.source.store.maps[plan.index]!.name;
          throw new LedgerError(`snapshot map ${name}: version ${c.written} is after the snapshot`);
        }
        this.u32(c.key.length);
        this.pos = putLatin1(out, c.key, this.pos);
        this.u32(c.value.length);
        this.pos = putLatin1(out, c.value, this.pos);
        this.u64(c.written);
        left--;
      }
      if (left > 0) {
        this.cursor = undefined;
        this.mapAt++;
      }
    }
    if (this.mapAt === maps.length) {
      if (this.phase === "public") this.afterPublic();
      else this.finish();
    }
    return left;
  }

  /** Writes the anchor and the private section's size; the private maps follow, encrypted. */
  private afterPublic(): void {
    this.u32(this.anchorBytes.length);
    this.out.set(this.anchorBytes, this.pos);
    this.pos += this.anchorBytes.length;
    const secret = this.secret;
    this.u32(secret ? this.privateSize + TAG_LENGTH : 0);
    this.mapAt = 0;
    this.cursor = undefined;
    if (!secret) {
      this.finish();
      return;
    }
    this.settle();
    this.cipher = createCipheriv("aes-256-gcm", secret.key, snapshotIv(this.seqno), {
      authTagLength: TAG_LENGTH,
    });
    // The header, public maps, anchor and sizes are the additional data (as `seal` is given them).
    this.cipher.setAAD(this.out.subarray(0, this.pos));
    this.phase = "private";
    this.u32(this.privateMaps.length);
  }

  /** Encrypts what was written since the last step and feeds the final bytes to the digests. */
  private settle(): void {
    if (this.pos === this.finalTo) return;
    const region = this.out.subarray(this.finalTo, this.pos);
    if (this.phase === "private" && this.cipher) {
      // GCM is a stream: the ciphertext has the plaintext's length and replaces it in place.
      this.out.set(this.cipher.update(region), this.finalTo);
    }
    this.digestThrough(this.pos);
  }

  private digestThrough(end: number): void {
    const region = this.out.subarray(this.finalTo, end);
    this.hash.update(region);
    if (incrementalCrc) this.crc = zlib.crc32(region, this.crc);
    this.finalTo = end;
  }

  private finish(): void {
    if (this.cipher) {
      this.settle();
      this.cipher.final();
      this.out.set(this.cipher.getAuthTag(), this.pos);
      this.pos += TAG_LENGTH;
    }
    if (this.pos !== this.out.length - 4) {
      throw new LedgerError(`snapshot encoder sized ${this.out.length - 4} bytes but wrote ${this.pos}`);
    }
    this.digestThrough(this.pos);
    const crc = incrementalCrc ? this.crc : crc32(this.out.subarray(0, this.pos));
    this.u32(crc);
    this.digestThrough(this.pos);
    const out = this.out;
    this.result = {
      bytes: new Uint8Array(out.buffer, out.byteOffset, out.length),
      digest: new Uint8Array(this.hash.digest()),
    };
    this.phase = "done";
  }

  private u16(value: number): void {
    this.pos = this.out.writeUInt16LE(value, this.pos);
  }

  private u32(value: number): void {
    this.pos = this.out.writeUInt32LE(value, this.pos);
  }

  private u64(value: number): void {
    this.out.writeUInt32LE(value % TWO_32, this.pos);
    this.pos = this.out.writeUInt32LE(Math.floor(value / TWO_32), this.pos + 4);
  }
}

/**
 * Writes a latin1 string's bytes (the store keeps keys and values so, one char per byte) at `at`;
 * returns the offset after them. Short ones byte by byte: cheaper than a call into Buffer.write.
 */
function putLatin1(out: Buffer, text: string, at: number): number {
  const n = text.length;
  if (n <= 32) {
    for (let i = 0; i < n; i++) out[at + i] = text.charCodeAt(i);
    return at + n;
  }
  return at + out.write(text, at, n, "latin1");
}

/** Encodes a whole snapshot at once (restarts, tests, the simulator). */
export function encodeSnapshotFrom(source: SnapshotSource, secrets: LedgerSecrets): EncodedSnapshot {
  const encoder = new SnapshotEncoder(source, secrets);
  encoder.step(Number.POSITIVE_INFINITY);
  return encoder.encoded();
}
