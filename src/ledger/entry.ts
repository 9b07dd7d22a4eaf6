/**
 * Ledger entries: one transaction's write set framed for disk. Pure code, no I/O.
 *
 * Frame (all integers little-endian; docs/ledger-format.md has the full table):
 *   u8 version | u8 flags | u16 reserved | u32 frame size | u32 public size
 *   public domain | private domain (AES-256-GCM ciphertext + tag, absent if no private maps)
 *   u32 CRC-32 of every byte before it
 * The CRC finds torn writes; the GCM tag (with header + public domain as AAD) finds tampering with
 * anything an attacker could not also re-sign, and the Merkle tree covers the rest.
 */
import { sha256 } from "../crypto/index.ts";
import type { WriteSet } from "../kv/index.ts";
import { seal, TAG_LENGTH, unseal } from "./aead.ts";
import { ByteReader, ByteWriter, checkU64, crc32, plainView, putU32le, u32le } from "./bytes.ts";
import { LedgerError, withContext } from "./errors.ts";
import { checkDigest, DIGEST_LENGTH } from "./evidence.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { isPublicMap, prepareMaps, readMaps, sortMapsByName, writeMaps } from "./writeset.ts";

export enum EntryType {
  WriteSet = 0,
  Signature = 1,
}

export interface Entry {
  seqno: number;
  view: number;
  type: EntryType;
  /** The seqno at which the ledger secret encrypting the private domain took effect (0 = first). */
  secretVersion: number;
  /** 32 bytes; zeros when the app set none. */
  claimsDigest: Uint8Array;
  /** 32 bytes: SHA-256 of the UTF-8 commit evidence string. */
  commitEvidenceDigest: Uint8Array;
  /** Both domains; split by map name (`public:` prefix = public). */
  writeSet: WriteSet;
}

export interface DecodedEntry {
  seqno: number;
  view: number;
  type: EntryType;
  secretVersion: number;
  claimsDigest: Uint8Array;
  commitEvidenceDigest: Uint8Array;
  publicWriteSet: WriteSet;
  hasPrivate: boolean;
  /** SHA-256 over the public domain bytes followed by the private domain bytes, as stored. */
  writeSetDigest: Uint8Array;
  /** The exact frame bytes. */
  frame: Uint8Array;
}

export const ENTRY_FORMAT_VERSION = 1;
export const FLAG_PRIVATE = 0x01;
export const FRAME_HEADER_LENGTH = 12;
export const FRAME_CRC_LENGTH = 4;
/** seqno, view, type, secret version, claims digest, commit evidence digest, map count. */
const PUBLIC_FIXED_LENGTH = 8 + 8 + 1 + 8 + DIGEST_LENGTH + DIGEST_LENGTH + 4;
export const MIN_FRAME_LENGTH = FRAME_HEADER_LENGTH + PUBLIC_FIXED_LENGTH + FRAME_CRC_LENGTH;
/** 1 GiB: far beyond any sane transaction, and keeps a corrupt size from asking for 4 GiB. */
export const MAX_FRAME_LENGTH = 2 ** 30;
/** Views up to this value fit the 4-byte view in the IV; 0xFFFFFFFF itself is kept for snapshots. */
export const MAX_PRIVATE_VIEW = 0xfffffffe;

/** IV = u64 LE seqno || u32 LE view: unique per secret as long as a TxID is encrypted once. */
export function entryIv(seqno: number, view: number): Uint8Array {
  checkU64(seqno, "seqno");
  if (!Number.isInteger(view) || view < 0 || view > 0xffffffff) {
    throw new LedgerError(`view ${view} does not fit the IV's 4 bytes`);
  }
  const iv = new Uint8Array(12);
  putU32le(iv, 0, seqno % 2 ** 32);
  putU32le(iv, 4, Math.floor(seqno / 2 ** 32));
  putU32le(iv, 8, view);
  return iv;
}

export function encodeEntry(entry: Entry, secrets: LedgerSecrets): Uint8Array {
  checkU64(entry.seqno, "seqno");
  if (entry.seqno < 1) throw new LedgerError("seqno must be at least 1");
  checkU64(entry.view, "view");
  checkU64(entry.secretVersion, "secret version");
  if (entry.secretVersion > entry.seqno) {
    throw new LedgerError(`secret version ${entry.secretVersion} is after seqno ${entry.seqno}`);
  }
  if (entry.type !== EntryType.WriteSet && entry.type !== EntryType.Signature) {
    throw new LedgerError(`unknown entry type ${entry.type}`);
  }
  checkDigest(entry.claimsDigest, "claims digest");
  checkDigest(entry.commitEvidenceDigest, "commit evidence digest");
  if (!Array.isArray(entry.writeSet)) throw new LedgerError("write set must be an array of maps");

  const publicMaps = prepareMaps(entry.writeSet.filter((map) => isPublicMap(map.name)));
  const privateMaps = prepareMaps(entry.writeSet.filter((map) => !isPublicMap(map.name)));

  const pub = new ByteWriter();
  pub.u64(entry.seqno);
  pub.u64(entry.view);
  pub.u8(entry.type);
  pub.u64(entry.secretVersion);
  pub.bytes(entry.claimsDigest);
  pub.bytes(entry.commitEvidenceDigest);
  writeMaps(publicMaps, pub);
  const publicDomain = pub.finish();

  let plaintext: Uint8Array | undefined;
  if (privateMaps.length > 0) {
    if (entry.view > MAX_PRIVATE_VIEW) {
      throw new LedgerError(`view ${entry.view} is too large to encrypt (max ${MAX_PRIVATE_VIEW})`);
    }
    const priv = new ByteWriter();
    writeMaps(privateMaps, priv);
    plaintext = priv.finish();
  }
  const privateLength = plaintext ? plaintext.length + TAG_LENGTH : 0;
  const frameLength = FRAME_HEADER_LENGTH + publicDomain.length + privateLength + FRAME_CRC_LENGTH;
  if (frameLength > MAX_FRAME_LENGTH) {
    throw new LedgerError(
      `entry ${entry.seqno} is ${frameLength} bytes, above the ${MAX_FRAME_LENGTH} limit`,
    );
  }

  const header = new ByteWriter();
  header.u8(ENTRY_FORMAT_VERSION);
  header.u8(plaintext ? FLAG_PRIVATE : 0);
  header.u16(0);
  header.u32(frameLength);
  header.u32(publicDomain.length);

  const out = new ByteWriter();
  out.bytes(header.finish());
  out.bytes(publicDomain);
  if (plaintext) {
    const key = secrets.get(entry.secretVersion);
    const aad = out.finish();
    out.bytes(seal(key, entryIv(entry.seqno, entry.view), plaintext, aad));
  }
  out.u32(0);
  const frame = out.finish();
  putU32le(frame, frame.length - FRAME_CRC_LENGTH, crc32(frame.subarray(0, frame.length - FRAME_CRC_LENGTH)));
  return frame;
}

/** The frame size field of a frame starting at `at`, if its first 8 bytes are there. */
export function frameLengthAt(data: Uint8Array, at: number): number | undefined {
  return data.length - at >= 8 ? u32le(data, at + 4) : undefined;
}

/** True when `frame`'s trailing CRC matches its contents. */
export function frameChecksumOk(frame: Uint8Array): boolean {
  if (frame.length < FRAME_CRC_LENGTH) return false;
  const body = frame.subarray(0, frame.length - FRAME_CRC_LENGTH);
  return crc32(body) === u32le(frame, frame.length - FRAME_CRC_LENGTH);
}

interface FrameLayout {
  flags: number;
  publicLength: number;
  privateLength: number;
}

function readHeader(frame: Uint8Array, r: ByteReader): FrameLayout {
  if (frame.length < MIN_FRAME_LENGTH) {
    r.fail(`frame of ${frame.length} bytes is shorter than the minimum ${MIN_FRAME_LENGTH}`, 0);
  }
  const version = r.u8("format version");
  if (version !== ENTRY_FORMAT_VERSION) r.fail(`unknown entry format version ${version}`, 0);
  const flags = r.u8("flags");
  if ((flags & ~FLAG_PRIVATE) !== 0) r.fail(`unknown flag bits 0x${flags.toString(16)}`, 1);
  if (r.u16("reserved") !== 0) r.fail("reserved bytes are not zero", 2);
  const frameLength = r.u32("frame size");
  if (frameLength !== frame.length) {
    r.fail(`frame size field says ${frameLength} but the frame has ${frame.length} bytes`, 4);
  }
  if (!frameChecksumOk(frame)) r.fail("checksum mismatch", frame.length - FRAME_CRC_LENGTH);
  const publicLength = r.u32("public size");
  const room = frame.length - FRAME_HEADER_LENGTH - FRAME_CRC_LENGTH;
  if (publicLength < PUBLIC_FIXED_LENGTH || publicLength > room) {
    r.fail(`public size ${publicLength} is outside [${PUBLIC_FIXED_LENGTH}, ${room}]`, 8);
  }
  const privateLength = room - publicLength;
  const hasPrivate = (flags & FLAG_PRIVATE) !== 0;
  if (hasPrivate && privateLength < TAG_LENGTH + 4) {
    r.fail(`private domain of ${privateLength} bytes is too short`, FRAME_HEADER_LENGTH + publicLength);
  }
  if (!hasPrivate && privateLength !== 0) {
    r.fail(
      `${privateLength} bytes after the public domain but no private flag`,
      FRAME_HEADER_LENGTH + publicLength,
    );
  }
  return { flags, publicLength, privateLength };
}

/** Parses and validates a frame. Needs no secret: the private domain is checked only for its size. */
export function decodeEntry(input: Uint8Array): DecodedEntry {
  if (!(input instanceof Uint8Array)) throw new LedgerError("entry frame must be a Uint8Array");
  const frame = plainView(input);
  const r = new ByteReader(frame, "entry");
  const layout = readHeader(frame, r);
  const publicEnd = FRAME_HEADER_LENGTH + layout.publicLength;
  const pub = new ByteReader(frame.subarray(FRAME_HEADER_LENGTH, publicEnd), "entry", FRAME_HEADER_LENGTH);
  const seqno = pub.u64("seqno");
  try {
    if (seqno < 1) pub.fail("seqno 0 is not valid", 0);
    const view = pub.u64("view");
    const typeAt = pub.pos;
    const type = pub.u8("entry type");
    if (type !== EntryType.WriteSet && type !== EntryType.Signature)
      pub.fail(`unknown entry type ${type}`, typeAt);
    const secretAt = pub.pos;
    const secretVersion = pub.u64("secret version");
    if (secretVersion > seqno) pub.fail(`secret version ${secretVersion} is after the seqno`, secretAt);
    const hasPrivate = (layout.flags & FLAG_PRIVATE) !== 0;
    if (hasPrivate && view > MAX_PRIVATE_VIEW) pub.fail(`view ${view} cannot have a private domain`, 8);
    const claimsDigest = pub.bytes(DIGEST_LENGTH, "claims digest");
    const commitEvidenceDigest = pub.bytes(DIGEST_LENGTH, "commit evidence digest");
    const publicWriteSet = readMaps(pub, "public");
    pub.end();
    return {
      seqno,
      view,
      type,
      secretVersion,
      claimsDigest,
      commitEvidenceDigest,
      publicWriteSet,
      hasPrivate,
      writeSetDigest: frameWriteSetDigest(frame),
      frame,
    };
  } catch (error) {
    throw withContext(error, { seqno });
  }
}

/** The full write set, public and private maps merged in name order. */
export function decryptEntry(decoded: DecodedEntry, secrets: LedgerSecrets): WriteSet {
  if (!decoded.hasPrivate) return [...decoded.publicWriteSet];
  const frame = decoded.frame;
  const publicEnd = FRAME_HEADER_LENGTH + u32le(frame, 8);
  const context = { seqno: decoded.seqno };
  try {
    const plaintext = unseal(
      secrets.get(decoded.secretVersion),
      entryIv(decoded.seqno, decoded.view),
      frame.subarray(publicEnd, frame.length - FRAME_CRC_LENGTH),
      frame.subarray(0, publicEnd),
      "private domain",
    );
    const r = new ByteReader(plaintext, "private domain");
    const privateMaps = readMaps(r, "private");
    r.end();
    if (privateMaps.length === 0) r.fail("no maps", 0);
    // Each domain is already in canonical order (readMaps insists): with no public maps there
    // is nothing to merge.
    if (decoded.publicWriteSet.length === 0) return privateMaps;
    return sortMapsByName([...decoded.publicWriteSet, ...privateMaps]);
  } catch (error) {
    throw withContext(error, context);
  }
}

/** write_set_digest of a complete frame: SHA-256 of both domains exactly as stored. */
export function frameWriteSetDigest(frame: Uint8Array): Uint8Array {
  return sha256(frame.subarray(FRAME_HEADER_LENGTH, frame.length - FRAME_CRC_LENGTH));
}
