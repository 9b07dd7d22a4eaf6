/**
 * 256-bit EVM words between bigints and big-endian bytes, in four 64-bit limbs. The interpreter
 * converts a word at every MLOAD, MSTORE, CALLDATALOAD, KECCAK256 and LOG topic; through a hex
 * string (`toString(16)`, then parsing it back) that cost about 0.4 us each, and an ERC-20 transfer
 * does it a few hundred times. Words are always in [0, 2^256): the interpreter keeps them so.
 */

const LIMB = (1n << 64n) - 1n;

/** Writes `v` as 32 big-endian bytes at `at`. */
export function putWord(view: DataView, at: number, v: bigint): void {
  if (v <= LIMB) {
    view.setBigUint64(at, 0n);
    view.setBigUint64(at + 8, 0n);
    view.setBigUint64(at + 16, 0n);
    view.setBigUint64(at + 24, v);
    return;
  }
  view.setBigUint64(at + 24, BigInt.asUintN(64, v));
  view.setBigUint64(at + 16, BigInt.asUintN(64, v >> 64n));
  view.setBigUint64(at + 8, BigInt.asUintN(64, v >> 128n));
  view.setBigUint64(at, v >> 192n);
}

/** The word in the 32 big-endian bytes at `at`. */
export function getWord(view: DataView, at: number): bigint {
  const a0 = view.getBigUint64(at);
  const a1 = view.getBigUint64(at + 8);
  const a2 = view.getBigUint64(at + 16);
  const a3 = view.getBigUint64(at + 24);
  if (a0 === 0n && a1 === 0n && a2 === 0n) return a3;
  return (a0 << 192n) | (a1 << 128n) | (a2 << 64n) | a3;
}

/** `v` as 32 new bytes. */
export function wordBytes(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  putWord(new DataView(out.buffer), 0, v);
  return out;
}

/** The word in exactly 32 bytes. */
export function wordOf(bytes: Uint8Array): bigint {
  return getWord(new DataView(bytes.buffer, bytes.byteOffset, 32), 0);
}
