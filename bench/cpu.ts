import { readFileSync } from "node:fs";

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream build). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system, ms) a process has used so far, from /proc; undefined where there is
 * no /proc. The machine is shared and wall-clock throughput is noisy; CPU per write is not.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at field 3; utime, stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** CPU ms used by `pid` between two readings, divided by `operations`. */
export function perOperation(before: number | undefined, after: number | undefined, operations: number) {
  if (before === undefined || after === undefined || operations === 0) return undefined;
  return Number(((after - before) / operations).toFixed(3));
}
