import { performance } from "node:perf_hooks";
import { Pool } from "undici";

export interface LoadResult {
  operations: number;
  errors: number;
  seconds: number;
  ops_per_sec: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
}

export interface LoadOptions {
  origin: string;
  tls: { ca: string; cert: string; key: string };
  connections: number;
  seconds: number;
  /** Builds request number i. */
  request: (i: number) => {
    method: "PUT" | "POST";
    path: string;
    headers: Record<string, string>;
    body: string;
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Number(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(3));
}

/** Closed-loop load: `connections` clients each send one request at a time until time is up. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(opts.origin, {
    connections: opts.connections,
    pipelining: 1,
    connect: { ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key },
  });
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const start = performance.now();
  const deadline = start + opts.seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) {
      const spec = opts.request(next++);
      const sent = performance.now();
      try {
        const res = await pool.request({ ...spec });
        await res.body.dump();
        if (res.statusCode >= 300) errors++;
        else latencies.push(performance.now() - sent);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, client));
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    operations: latencies.length,
    errors,
    seconds: Number(seconds.toFixed(3)),
    ops_per_sec: Math.round(latencies.length / seconds),
    latency_ms: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
  };
}
