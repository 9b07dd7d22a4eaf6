/** The e2e tests' node processes: liveness, signals, children, and a kill on the way out. */
import { readdirSync, readFileSync } from "node:fs";

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Every process any network here started and has not seen die. If this test process ends
 * before a network's cleanup ran (a test time-out, an uncaught error, Ctrl-C), they are killed
 * on the way out rather than left running.
 */
export const live = new Set<number>();
process.once("exit", () => {
  for (const pid of live) signal(pid, "SIGKILL");
});
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(sig, () => {
    for (const pid of live) signal(pid, "SIGKILL");
    process.exit(code);
  });
}

/** Direct children of `pid`, from /proc (the sandbox's node processes before it names them). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command name: state, then the parent pid.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function tail(path: string, lines = 40): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return `(${path}: no log)`;
  }
  return `--- ${path} (last ${lines} lines)\n${text.split("\n").slice(-lines).join("\n")}`;
}
