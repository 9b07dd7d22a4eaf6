import { randomBytes as nodeRandomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

/**
 * Everything a core module may ask of the outside world. The shell passes the real one; the
 * simulator passes a seeded one, so any run can be replayed exactly.
 */
export interface Environment {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  randomBytes(length: number): Uint8Array;
}

/**
 * Development and fault testing only: `COCO_DEV_CLOCK_FILE` names a file holding a number of
 * milliseconds added to this node's wall clock, re-read at most every 100 ms, so a test can make
 * the clock jump forwards or backwards while the node runs (the nemesis suite's clock faults). A
 * missing or unreadable file means no offset. Unset (always, in production), the clock is the
 * system's.
 */
const CLOCK_FILE = process.env.COCO_DEV_CLOCK_FILE;
const CLOCK_REREAD_MS = 100;
let clockOffset = 0;
let clockReadAt = Number.NEGATIVE_INFINITY;

function offsetNow(file: string): number {
  const now = Date.now();
  if (Math.abs(now - clockReadAt) >= CLOCK_REREAD_MS) {
    clockReadAt = now;
    try {
      const value = Number(readFileSync(file, "utf8").trim());
      clockOffset = Number.isFinite(value) ? value : 0;
    } catch {
      clockOffset = 0;
    }
  }
  return now + clockOffset;
}

export const realEnvironment: Environment = {
  now: CLOCK_FILE ? () => offsetNow(CLOCK_FILE) : () => Date.now(),
  randomBytes: (length) => new Uint8Array(nodeRandomBytes(length)),
};
