import { performance } from "node:perf_hooks";
import { Pool } from "undici";

export interface LoadResult {
  operations: number;
  errors: number;
  seconds: number;
  ops_per_sec: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /**
   * Milliseconds from the start of the load until every client had its first answer: its
   * connection's TLS handshake is in its first request's time. Requests sent before the
   * measurement began are not measured, so a set-up longer than the warm-up does not show as
   * latency (it did before: first requests of 256 new connections answered at 2-4 s).
   */
  connected_ms: number;
  /**
   * Requests sent during the warm-up and answered after the measurement began: counted in
   * `operations` (answered in the window), not in the latencies; and the longest of them (ms),
   * which the latencies included before.
   */
  straddling: number;
  straddling_max_ms: number;
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

/** The longest the warm-up waits past its time for every connection's first answer. */
const MAX_SETUP_WAIT_MS = 30_000;

/**
 * Closed-loop load: `connections` clients each send one request at a time until time is up.
 *
 * With a warm-up, the measurement starts once the warm-up's time is over and every client has had
 * its first answer (its connection's TLS handshake is part of that request), whichever is later,
 * and only requests sent after it are measured. 256 new mutual-TLS connections to one Node
 * process took 2-4 s to set up on this 2-core machine under load, longer than the 2 s warm-up:
 * their first requests, answered after the warm-up, showed as a 2-4 s maximum latency.
 */
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
  const loadStart = performance.now();
  let start = loadStart;
  const warm = loadStart + (opts.warmupSeconds ?? 0) * 1000;
  let warming = warm > loadStart;
  let deadline = warming ? Number.POSITIVE_INFINITY : loadStart + opts.seconds * 1000;
  if (!warming) opts.measuring?.();
  let warmTimeOver = false;
  let connected = 0;
  let lastFirstAnswer = loadStart;
  let straddling = 0;
  let straddlingMax = 0;
  const beginMeasuring = () => {
    if (!warming) return;
    warming = false;
    start = performance.now();
    deadline = start + opts.seconds * 1000;
    latencies.length = 0;
    errors = 0;
    opts.measuring?.();
  };
  const warmTimer = warming
    ? setTimeout(() => {
        warmTimeOver = true;
        if (connected === opts.connections) beginMeasuring();
      }, warm - loadStart)
    : undefined;
  const setupCap = warming ? setTimeout(beginMeasuring, warm - loadStart + MAX_SETUP_WAIT_MS) : undefined;
  const client = async () => {
    let first = true;
    while (performance.now() < deadline && next < last) {
      const i = next++;
      const spec = opts.request(i);
      const sent = performance.now();
      // Only requests sent once the measurement began are measured (one sent in the warm-up may
      // include its connection's set-up, or wait behind others').
      const measured = !warming;
      try {
        const res = await pool.request({ ...spec });
        await res.body.dump();
        if (res.statusCode >= 300) {
          if (measured) errors++;
        } else {
          if (measured) latencies.push(performance.now() - sent);
          else if (!warming) {
            straddling++;
            straddlingMax = Math.max(straddlingMax, performance.now() - sent);
          }
          opts.acknowledged?.(i);
        }
      } catch {
        if (measured) errors++;
      }
      if (first) {
        first = false;
        connected++;
        lastFirstAnswer = performance.now();
        if (connected === opts.connections && warmTimeOver) beginMeasuring();
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, client));
  clearTimeout(warmTimer);
  clearTimeout(setupCap);
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    operations: latencies.length + straddling,
    errors,
    seconds: Number(seconds.toFixed(3)),
    ops_per_sec: Math.round((latencies.length + straddling) / seconds),
    latency_ms: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    connected_ms: Math.round(lastFirstAnswer - loadStart),
    straddling,
    straddling_max_ms: Math.round(straddlingMax),
  };
}
