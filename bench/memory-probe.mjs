// Preloaded into a node process by bench/long.ts --memory-log DIR (node --import this-file):
// every MEMORY_PROBE_MS (5,000 by default) it appends one JSON line to DIR/memory-<pid>.jsonl with
// process.memoryUsage(), V8's heap spaces and the kernel's view of the process (/proc smaps_rollup),
// so RSS growth can be split into JS heap, array buffers, and native memory outside V8.
// Plain JavaScript: it loads before tsx does. The timer is unref'd; it never keeps a node alive.
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapSpaceStatistics } from "node:v8";

const dir = process.env.MEMORY_PROBE_DIR;
if (dir) {
  const file = join(dir, `memory-${process.pid}.jsonl`);
  const every = Number(process.env.MEMORY_PROBE_MS ?? 5000);
  const mb = (n) => Number((n / 1048576).toFixed(2));
  const kernel = () => {
    try {
      const out = {};
      for (const line of readFileSync("/proc/self/smaps_rollup", "utf8").split("\n")) {
        const m = /^(Rss|Anonymous|Private_Dirty|Shared_Clean|Private_Clean):\s+(\d+) kB/.exec(line);
        if (m) out[m[1]] = Number((Number(m[2]) / 1024).toFixed(2));
      }
      return out;
    } catch {
      return {};
    }
  };
  const sample = () => {
    const m = process.memoryUsage();
    const spaces = {};
    for (const s of getHeapSpaceStatistics()) {
      spaces[s.space_name] = { used: mb(s.space_used_size), size: mb(s.space_size) };
    }
    const line = {
      t: Date.now(),
      rss: mb(m.rss),
      heapTotal: mb(m.heapTotal),
      heapUsed: mb(m.heapUsed),
      external: mb(m.external),
      arrayBuffers: mb(m.arrayBuffers),
      kernel: kernel(),
      spaces,
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  };
  setInterval(sample, every).unref();
}
