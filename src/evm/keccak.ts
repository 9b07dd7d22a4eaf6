import { createRequire } from "node:module";
import { keccak_256 as jsKeccak256 } from "@noble/hashes/sha3.js";

/** The `keccak` package's native sponge (its N-API addon), as Coco drives it. */
interface NativeKeccakState {
  initialize(rate: number, capacity: number): void;
  absorb(data: Buffer): void;
  absorbLastFewBits(bits: number): void;
  squeeze(length: number): Buffer;
}

/**
 * The `keccak` package's prebuilt addon (prebuilds/linux-x64 inside the package; its install
 * script is denied and not needed), loaded directly: the package's own wrapper is a stream
 * (readable-stream) built per hash, which costs more than the hash. Where no prebuilt binary fits
 * the platform, or with `COCO_EVM_JS_KECCAK=1`, hashing stays in JavaScript (@noble/hashes).
 */
function loadNative(): NativeKeccakState | undefined {
  if (process.env.COCO_EVM_JS_KECCAK === "1") return undefined;
  try {
    const require = createRequire(import.meta.url);
    const dir = require.resolve("keccak/package.json").slice(0, -"/package.json".length);
    // node-gyp-build is the package's own dependency: resolved from its directory.
    const load = createRequire(`${dir}/package.json`)("node-gyp-build") as (dir: string) => unknown;
    const State = load(dir) as new () => NativeKeccakState;
    if (typeof State !== "function") return undefined;
    const state = new State();
    state.initialize(1088, 512);
    return state;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** How this node hashes: "native" (the `keccak` package's addon) or "javascript". */
export const KECCAK: "native" | "javascript" = native ? "native" : "javascript";

/**
 * Keccak-256 as Ethereum uses it (not SHA3-256: the original padding). Natively about 5 to 20
 * times faster than @noble/hashes on the 32 to 3,000-byte inputs a transfer hashes (transaction
 * and signing hashes, SHA3 of mapping slots, log blooms, block hashes). One sponge is reused:
 * JavaScript runs one hash at a time, and each starts from a fresh initialisation.
 */
export function keccak256(data: Uint8Array): Uint8Array {
  if (!native) return jsKeccak256(data);
  native.initialize(1088, 512);
  native.absorb(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  native.absorbLastFewBits(0x01);
  const out = native.squeeze(32);
  return new Uint8Array(out.buffer, out.byteOffset, 32);
}
