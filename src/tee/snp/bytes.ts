// Small byte helpers for the SNP module (hex encoding is src/crypto's toHex).

/** Lower-case hex of `text` if it is hex of exactly `length` bytes, else undefined. */
export function normaliseHex(text: string, length: number): string | undefined {
  const clean = text.trim().toLowerCase().replace(/^0x/, "");
  return clean.length === length * 2 && /^[0-9a-f]*$/.test(clean) ? clean : undefined;
}

export function isAllZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

/** The little-endian unsigned integer in `bytes`, as a bigint. */
export function leUint(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

/** `0x` and 16 hex digits: how u64 fields are shown (JSON has no 64-bit integers). */
export function u64Hex(value: bigint): string {
  return `0x${value.toString(16).padStart(16, "0")}`;
}
