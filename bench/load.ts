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
  /** Stop after this many requests have been sent (as well as at `seconds`). */
  maxRequests?: number;
  /** Request numbers start here (so successive loads on one store write fresh keys). */
  firstRequest?: number;
  /**
   * Seconds of load before the measured `seconds` begin (connections open, code warms up);
   * requests answered in them are not counted. `measuring` is called when the measurement starts.
   */
  warmupSeconds?: number;
  measuring?: () => void;
  /** Called with the number of each request that was answered 2xx (acknowledged). */
  acknowledged?: (i: number) => void;
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
  let next = opts.firstRequest ?? 0;
  const last = next + (opts.maxRequests ?? Number.POSITIVE_INFINITY);
  let start = performance.now();
  const warm = start + (opts.warmupSeconds ?? 0) * 1000;
  let warming = warm > start;
  if (!warming) opts.measuring?.();
  const deadline = warm + opts.seconds * 1000;
  // Ends the warm-up at its time, whatever the clients are doing then.
  const warmTimer = warming
    ? setTimeout(() => {
        warming = false;
        start = performance.now();
        latencies.length = 0;
        errors = 0;
        opts.measuring?.();
      }, warm - start)
    : undefined;
  const client = async () => {
    while (performance.now() < deadline && next < last) {
      const i = next++;
      const spec = opts.request(i);
      const sent = performance.now();
      try {
        const res = await pool.request({ ...spec });
        await res.body.dump();
        if (res.statusCode >= 300) errors++;
        else {
          if (!warming) latencies.push(performance.now() - sent);
          opts.acknowledged?.(i);
        }
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, client));
  clearTimeout(warmTimer);
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
