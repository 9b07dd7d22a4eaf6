import { combine } from "shamir-secret-sharing";
import { RecoveryError } from "./errors.ts";
import { draw, type RandomBytes } from "./random.ts";

/**
 * k-of-n Shamir secret sharing over GF(2^8), byte by byte, in the share layout of the audited
 * `shamir-secret-sharing` package: a share is the polynomial's values at one x (as many bytes as
 * the secret) followed by x itself (1..255), so at most 255 shares.
 *
 * Splitting is done here and not with the package's split(), which draws its randomness from
 * node:crypto: Coco's core takes randomness from an injected source, so that a simulated run
 * replays exactly from its seed. All field arithmetic is still the package's, through combine():
 * - The polynomial f of degree k-1 is fixed by f(0) = secret and f(1), ..., f(k-1) drawn at random
 *   (uniform values at k-1 points are the same as uniform coefficients), so shares 1..k-1 are
 *   those random values.
 * - Every other share f(a) is Lagrange interpolation at a. In GF(2^8), x - y is x XOR y, so
 *   interpolating at a equals interpolating at 0 after XOR-ing every known x with a; combine()
 *   interpolates at 0, so f(a) = combine(known points with x replaced by x XOR a).
 *
 * Plain Shamir cannot tell which share is wrong: any k shares of the right length interpolate to
 * some secret. Coco therefore authenticates each share by a commitment (see shares.ts) and the
 * reconstructed key by the AES-GCM tag of the secret it wraps.
 */

export const MAX_SHARES = 255;

function withX(y: Uint8Array, x: number): Uint8Array {
  const share = new Uint8Array(y.length + 1);
  share.set(y, 0);
  share[y.length] = x;
  return share;
}

/** Shares for x = 1..count, in that order; any `threshold` of them rebuild `secret`. */
export async function splitSecret(
  secret: Uint8Array,
  count: number,
  threshold: number,
  randomBytes: RandomBytes,
): Promise<Uint8Array[]> {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new RecoveryError("InvalidInput", "the secret to split must be non-empty bytes");
  }
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARES) {
    throw new RecoveryError(
      "InvalidInput",
      `share count must be an integer from 1 to ${MAX_SHARES}, got ${count}`,
    );
  }
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > count) {
    throw new RecoveryError(
      "InvalidInput",
      `threshold must be an integer from 1 to the share count ${count}, got ${threshold}`,
    );
  }
  const points: { x: number; y: Uint8Array }[] = [{ x: 0, y: secret }];
  for (let x = 1; x < threshold; x++)
    points.push({ x, y: draw(randomBytes, secret.length, "share polynomial") });
  const shares: Uint8Array[] = [];
  for (let x = 1; x <= count; x++) {
    const known = points[x];
    if (known !== undefined) {
      shares.push(withX(known.y, x));
    } else if (threshold === 1) {
      shares.push(withX(secret, x)); // a constant polynomial: every share is the secret
    } else {
      shares.push(withX(await combine(points.map((p) => withX(p.y, p.x ^ x))), x));
    }
  }
  return shares;
}

/**
 * The secret from shares made by splitSecret. With fewer shares than the threshold the result is
 * some unrelated value, not an error: only the caller's authentication (the GCM tag) can tell.
 */
export async function combineShares(shares: Uint8Array[]): Promise<Uint8Array> {
  if (!Array.isArray(shares) || shares.length === 0 || shares.length > MAX_SHARES) {
    throw new RecoveryError("InvalidInput", `combine needs 1 to ${MAX_SHARES} shares`);
  }
  const length = shares[0]?.length ?? 0;
  const xs = new Set<number>();
  for (const [i, share] of shares.entries()) {
    if (!(share instanceof Uint8Array) || share.length < 2 || share.length !== length) {
      throw new RecoveryError(
        "InvalidShare",
        `share ${i} must be bytes of the same length as the others (at least 2)`,
      );
    }
    const x = share[length - 1] ?? 0;
    if (x === 0 || xs.has(x)) {
      throw new RecoveryError("InvalidShare", `share ${i} has x coordinate ${x}, which is zero or repeated`);
    }
    xs.add(x);
  }
  const [only] = shares;
  if (shares.length === 1 && only) return only.slice(0, -1);
  // The package insists on plain Uint8Arrays (a Buffer is refused), so copy.
  return combine(shares.map((share) => new Uint8Array(share)));
}
