/**
 * `0x`-prefixed lower-case hex of bytes by Node's native encoder. ethereumjs's `bytesToHex`
 * concatenates a string per byte in JavaScript: for a transfer's bloom (256 bytes), addresses,
 * slots and hashes that was the executor's largest allocation (a third of its garbage, session
 * 10). The result is the same string.
 */
export function toHex(bytes: Uint8Array): `0x${string}` {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`;
}

/** The unsigned big-endian integer in `bytes` (0 for none). */
export function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(toHex(bytes));
}
