import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type { CustomCrypto } from "@ethereumjs/common";
import { ecrecover as jsEcrecover, setLengthLeft } from "@ethereumjs/util";
import { keccak256 } from "./keccak.ts";

/** The part of the `secp256k1` package (libsecp256k1, prebuilt for Node) that Coco uses. */
interface NativeSecp256k1 {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
}

/**
 * libsecp256k1 through the `secp256k1` package's prebuilt binding (loaded from the package's
 * `prebuilds/`; no install script, nothing compiled or downloaded). Recovering a transaction's
 * sender costs about 0.05 ms with it against 1-3 ms in pure JavaScript (@noble/curves), the largest
 * single cost of a send. Where no prebuilt binary fits the platform, recovery stays in JavaScript.
 */
function loadNative(): NativeSecp256k1 | undefined {
  if (process.env.COCO_EVM_JS_SECP256K1 === "1") return undefined;
  try {
    // `bindings.js` is the native binding alone (the package's index falls back to a JS one).
    return createRequire(import.meta.url)("secp256k1/bindings.js") as NativeSecp256k1;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** How senders are recovered on this node: "native" (libsecp256k1) or "javascript". */
export const SENDER_RECOVERY: "native" | "javascript" = native ? "native" : "javascript";

/** The recovery id from `v` (0/1, 27/28, or EIP-155's `chainId * 2 + 35/36`), as Ethereum reads it. */
function recoveryId(v: bigint, chainId?: bigint): number {
  const id = v === 0n || v === 1n ? v : chainId === undefined ? v - 27n : v - (chainId * 2n + 35n);
  if (id !== 0n && id !== 1n) throw new Error("Invalid signature v value");
  return Number(id);
}

/**
 * Ethereum's ecrecover (the uncompressed public key without its 0x04 prefix), with the same
 * answers and refusals as @ethereumjs/util's: used for transaction senders and the ECRECOVER
 * precompile alike.
 */
export function ecrecover(
  msgHash: Uint8Array,
  v: bigint,
  r: Uint8Array,
  s: Uint8Array,
  chainId?: bigint,
): Uint8Array {
  if (!native) return jsEcrecover(msgHash, v, r, s, chainId);
  const id = recoveryId(v, chainId);
  if (r.length > 32 || s.length > 32) throw new Error("Invalid signature: r or s longer than 32 bytes");
  const signature = new Uint8Array(64);
  signature.set(setLengthLeft(r, 32), 0);
  signature.set(setLengthLeft(s, 32), 32);
  return native.ecdsaRecover(signature, id, msgHash, false).subarray(1);
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/** The primitives ethereumjs takes from a Common: native ecrecover, keccak-256 and SHA-256. */
export const CUSTOM_CRYPTO: CustomCrypto = { ecrecover, sha256, keccak256 };
