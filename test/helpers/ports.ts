/**
 * Ports for servers that tests start later (node processes, sandboxes, peers that come up after
 * their address is known).
 *
 * A port found free with `listen(0)` is taken from the kernel's ephemeral range, where any other
 * process's `listen(0)` or outgoing connection may take it again before our server binds it: with
 * two test files running at once this happened often enough to fail CI. So tests take ports from
 * below the ephemeral range (which starts at 32768 on Linux), and every test process claims a
 * block of them with an exclusive lock file, which it removes on exit; a lock whose process is
 * gone is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FIRST = 20_000;
const LAST = 32_000;
const BLOCK = 40;
const LOCKS = join(tmpdir(), "coco-test-ports");

let block: { next: number; end: number } | undefined;
const held: string[] = [];

process.once("exit", () => {
  for (const lock of held) rmSync(lock, { force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function claim(start: number): boolean {
  const lock = join(LOCKS, String(start));
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
  } catch {
    const owner = Number.parseInt(readFileSync(lock, "utf8"), 10);
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
    // Its process is gone: take it over (remove, then race for it like anyone else).
    rmSync(lock, { force: true });
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
    } catch {
      return false;
    }
  }
  held.push(lock);
  return true;
}

function claimBlock(): { next: number; end: number } {
  mkdirSync(LOCKS, { recursive: true });
  const blocks = Math.floor((LAST - FIRST) / BLOCK);
  const offset = Math.floor(Math.random() * blocks);
  for (let i = 0; i < blocks; i++) {
    const start = FIRST + ((offset + i) % blocks) * BLOCK;
    if (claim(start)) return { next: start, end: start + BLOCK };
  }
  throw new Error(`no free block of ${BLOCK} test ports in ${FIRST}-${LAST} (locks in ${LOCKS})`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * `count` consecutive ports, free now and not handed to any other test process; returns the
 * first. Ports that something outside the tests holds are skipped.
 */
export async function reservePorts(count: number): Promise<number> {
  if (count < 1 || count > BLOCK) throw new Error(`can reserve 1-${BLOCK} ports at once, not ${count}`);
  for (let attempt = 0; attempt < 50; attempt++) {
    if (!block || block.next + count > block.end) block = claimBlock();
    const base = block.next;
    block.next += count;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await bindable(p);
    if (ok) return base;
  }
  throw new Error(`found no ${count} consecutive free test ports`);
}

/** One port, free now and not handed to any other test process. */
export function freePort(): Promise<number> {
  return reservePorts(1);
}
