import { SnpError } from "./errors.ts";

/**
 * A minimal DER reader: enough of X.509 and CRLs to reach AMD's certificate extensions and a
 * CRL's revoked serials. Only single-byte tags and definite lengths exist in DER certificates;
 * anything else is refused rather than guessed at.
 */
export interface Tlv {
  tag: number;
  /** Offset of the identifier byte in `buf`. */
  offset: number;
  /** Content bounds in `buf`. */
  start: number;
  end: number;
  buf: Uint8Array;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads the TLV at `offset`, which must end by `limit`. */
export function readTlv(buf: Uint8Array, offset = 0, limit = buf.length, where = "DER"): Tlv {
  if (offset + 2 > limit) throw new SnpError("bad-der", `${where}: truncated at byte ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new SnpError("bad-der", `${where}: multi-byte tag at byte ${offset}`);
  let length = buf[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) {
      throw new SnpError("bad-der", `${where}: unsupported length form at byte ${offset + 1}`);
    }
    if (start + count > limit) throw new SnpError("bad-der", `${where}: truncated length at byte ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) {
    throw new SnpError("bad-der", `${where}: element at byte ${offset} runs past its container`);
  }
  return { tag, offset, start, end, buf };
}

/** Reads `buf` as exactly one TLV with the expected tag. */
export function readWhole(buf: Uint8Array, tag: number, where: string): Tlv {
  const tlv = readTlv(buf, 0, buf.length, where);
  if (tlv.end !== buf.length) throw new SnpError("bad-der", `${where}: trailing bytes after the element`);
  return expectTag(tlv, tag, where);
}

export function expectTag(tlv: Tlv, tag: number, where: string): Tlv {
  if (tlv.tag !== tag) {
    throw new SnpError(
      "bad-der",
      `${where}: expected tag 0x${tag.toString(16)} at byte ${tlv.offset}, found 0x${tlv.tag.toString(16)}`,
    );
  }
  return tlv;
}

/** The elements inside a constructed TLV. */
export function children(tlv: Tlv, where = "DER"): Tlv[] {
  const out: Tlv[] = [];
  let at = tlv.start;
  while (at < tlv.end) {
    const child = readTlv(tlv.buf, at, tlv.end, where);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function content(tlv: Tlv): Uint8Array {
  return tlv.buf.subarray(tlv.start, tlv.end);
}

/** The whole encoding of the element, header included (what a signature covers). */
export function encoded(tlv: Tlv): Uint8Array {
  return tlv.buf.subarray(tlv.offset, tlv.end);
}

export function decodeOid(tlv: Tlv, where = "DER"): string {
  const bytes = content(expectTag(tlv, TAG.OID, where));
  if (bytes.length === 0) throw new SnpError("bad-der", `${where}: empty OID`);
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join(".");
}

/** A DER INTEGER as a bigint (two's complement). */
export function decodeInteger(tlv: Tlv, where = "DER"): bigint {
  const bytes = content(expectTag(tlv, TAG.INTEGER, where));
  if (bytes.length === 0) throw new SnpError("bad-der", `${where}: empty INTEGER`);
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  if (bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

/** UTCTime or GeneralizedTime (the forms X.509 uses: UTC, with seconds). */
export function decodeTime(tlv: Tlv, where = "DER"): Date {
  const text = Buffer.from(content(tlv)).toString("latin1");
  let match: RegExpExecArray | null = null;
  if (tlv.tag === TAG.UTC_TIME) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match) {
      const yy = Number(match[1]);
      match[1] = String(yy < 50 ? 2000 + yy : 1900 + yy);
    }
  } else if (tlv.tag === TAG.GENERALIZED_TIME) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  }
  if (!match) throw new SnpError("bad-der", `${where}: unreadable time ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

/** Lower-case hex of a serial number's magnitude, without leading zero bytes. */
export function serialHex(tlv: Tlv, where = "DER"): string {
  const hex = Buffer.from(content(expectTag(tlv, TAG.INTEGER, where))).toString("hex");
  return hex.replace(/^(00)+(?=.)/, "");
}
