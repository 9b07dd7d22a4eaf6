import { RecoveryError } from "./errors.ts";

/** The injected random source (core code never reads randomness itself). */
export type RandomBytes = (n: number) => Uint8Array;

/** n bytes from the injected source, checked: a short or mistyped answer would weaken every key. */
export function draw(randomBytes: RandomBytes, n: number, what: string): Uint8Array {
  const bytes = randomBytes(n);
  if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
    throw new RecoveryError("InvalidInput", `randomBytes(${n}) for the ${what} did not return ${n} bytes`);
  }
  return bytes;
}
