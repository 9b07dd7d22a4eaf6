import { randomBytes as nodeRandomBytes } from "node:crypto";

/**
 * Everything a core module may ask of the outside world. The shell passes the real one; the
 * simulator passes a seeded one, so any run can be replayed exactly.
 */
export interface Environment {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  randomBytes(length: number): Uint8Array;
}

export const realEnvironment: Environment = {
  now: () => Date.now(),
  randomBytes: (length) => new Uint8Array(nodeRandomBytes(length)),
};
