/**
 * Client load for end-to-end tests: a few concurrent loops writing distinct ids with
 * respond-on-commit, and reading, while recording what each saw as a history for the
 * linearizability checker (times from `performance.now()`, one clock for all clients).
 *
 * Outcomes: a 200 is `ok`; an answer that proves the request did nothing (503 NotPrimary, a
 * refused connection) is left out of the history and the write retried on the primary; anything
 * else (a dropped connection, a time-out, any other error) leaves the write `unknown`.
 */
import type { KvRegisterInput, KvRegisterOutput, Operation } from "../utils/lincheck/index.ts";
import { budget, connectionRefused, type NetNode, type Network, sleep, waitUntil } from "./harness.ts";

export type HistoryOp = Operation<KvRegisterInput, KvRegisterOutput>;

export interface WorkloadOptions {
  clients: number;
  /** Share of operations that are reads (linearizable, answered on commit, sent to any node). */
  readShare: number;
  /** Caps per client, so no loop runs unbounded. */
  maxOpsPerClient: number;
  /**
   * The loops' time cap on an idle machine, stretched by the load at start like every wait
   * (`budget`): a fixed cap ran out under load before the scenario's last phase had its writes.
   */
  maxMs: number;
  writeTimeoutMs?: number;
}

/** How often a client probes its home node after a write there failed, until it answers. */
const PROBE_EVERY_MS = 500;
const MAX_ATTEMPTS = 8;

/** An error and its causes' codes and messages, on one line. */
function describeError(e: unknown): string {
  const parts: string[] = [];
  for (
    let err = e as { code?: string; message?: string; cause?: unknown } | undefined;
    err;
    err = err.cause as typeof err
  ) {
    parts.push(`${err.code ? `${err.code} ` : ""}${err.message ?? String(err)}`);
    if (parts.length === 4) break;
  }
  return parts.join(" <- ");
}

/** A client's home node, and whether its writes go elsewhere until it answers again. */
interface Avoid {
  home: NetNode;
  avoided: boolean;
}

class Stopped extends Error {
  constructor() {
    super("the workload was stopped");
  }
}

export class Workload {
  readonly history: HistoryOp[] = [];
  /** Writes answered 200, by id. */
  readonly acked = new Map<number, string>();
  /** The value each attempted id was written with (ids are distinct, so one value per id). */
  readonly attempted = new Map<number, string>();
  readonly stats = { ok: 0, unknown: 0, retried: 0, reads: 0 };
  /** Answers no correct node should give (a test or Coco bug); the test asserts this stays empty. */
  readonly unexpected: string[] = [];
  private readonly abort = new AbortController();
  private readonly whenStopped = new Promise<never>((_, reject) => {
    this.abort.signal.addEventListener("abort", () => reject(new Stopped()), { once: true });
  });
  private loops: Promise<void>[] = [];
  private primaryCache: Promise<NetNode> | undefined;
  private readonly keys: number[] = [];
  /** While set, loops wait on it before their next operation. */
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  private busy = 0;
  /** Client loops that have finished (their time or operation cap, or a stop). */
  private ended = 0;
  /** The outcome of the latest write that was not acknowledged, for a time-out's message. */
  private lastTrouble = "none";

  constructor(
    private readonly net: Network,
    private readonly opts: WorkloadOptions,
  ) {
    this.whenStopped.catch(() => {});
  }

  start(): void {
    const deadline = Date.now() + budget(this.opts.maxMs);
    this.loops = Array.from({ length: this.opts.clients }, (_, c) =>
      this.client(c, deadline)
        .catch((e) => {
          if (!(e instanceof Stopped)) this.unexpected.push(`client ${c} stopped: ${(e as Error).message}`);
        })
        .finally(() => this.ended++),
    );
  }

  /** Stops the loops; requests in flight are abandoned (their writes stay `unknown`). */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  /** Holds every loop before its next operation and waits until none is in flight. */
  async pause(): Promise<void> {
    let open = () => {};
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
    await waitUntil("client operations in flight to finish", 15_000, () => this.busy === 0, 20);
  }

  resume(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Waits until `count` more writes than now have been acknowledged. Fails at once, saying so, if
   * a client got an answer no correct node gives (`unexpected`) or every client loop has ended
   * (no more writes will come: a test cap, not a Coco fault). A time-out says how many writes
   * were acknowledged meanwhile and why the last one that was not failed.
   */
  async moreAcks(count: number, timeoutMs: number): Promise<void> {
    const from = this.acked.size;
    const target = from + count;
    let failure: Error | undefined;
    try {
      // waitUntil keeps polling through a probe's throw, so a failure ends the wait by returning.
      await waitUntil(`${count} more committed writes (from ${from})`, timeoutMs, () => {
        failure = this.failure(target);
        return failure !== undefined || this.acked.size >= target;
      });
    } catch (e) {
      throw new Error(
        `${(e as Error).message}: ${this.acked.size - from} acknowledged meanwhile; stats ${JSON.stringify(this.stats)}; last write not acknowledged: ${this.lastTrouble}`,
      );
    }
    if (failure) throw failure;
  }

  /** Why waiting for `target` acknowledged writes is pointless, or undefined if it is not. */
  private failure(target: number): Error | undefined {
    if (this.unexpected.length > 0) return new Error(`unexpected answers: ${this.unexpected.join("; ")}`);
    if (this.acked.size < target && this.ended === this.opts.clients) {
      return new Error(
        `the workload's clients all ended (time or operation cap) with ${this.acked.size} writes acknowledged, short of ${target}`,
      );
    }
    return undefined;
  }

  /**
   * The current primary, found once and shared by all clients until one is told otherwise.
   * Rejects with Stopped once the workload is stopped, so no loop waits on after that.
   */
  private primary(): Promise<NetNode> {
    if (!this.primaryCache) {
      const found = this.net.primary(30_000);
      found.catch(() => {
        if (this.primaryCache === found) this.primaryCache = undefined;
      });
      this.primaryCache = found;
    }
    return Promise.race([this.primaryCache, this.whenStopped]);
  }

  private forgetPrimary(node: NetNode): void {
    const cached = this.primaryCache;
    cached?.then(
      (p) => {
        if (p === node && this.primaryCache === cached) this.primaryCache = undefined;
      },
      () => {},
    );
  }

  private async client(c: number, deadline: number): Promise<void> {
    const home = this.net.nodes[c % this.net.nodes.length]!;
    const avoid: Avoid = { home, avoided: false };
    for (let i = 0; i < this.opts.maxOpsPerClient && !this.stopped && Date.now() < deadline; i++) {
      if (this.gate) await Promise.race([this.gate.promise, this.whenStopped]);
      this.busy++;
      try {
        if (this.keys.length > 0 && Math.random() < this.opts.readShare) await this.read(c);
        else await this.write(c, (c + 1) * 1_000_000 + i, `c${c}-v${i}`, home, avoid);
      } finally {
        this.busy--;
      }
    }
  }

  /**
   * Writes `id` first through this client's home node (a backup forwards it to the primary),
   * then through the primary, until the outcome is known, or is unknown.
   */
  private async write(c: number, id: number, value: string, home: NetNode, avoid: Avoid) {
    this.attempted.set(id, value);
    this.keys.push(id);
    const input: KvRegisterInput = { op: "put", key: String(id), value };
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.stopped; attempt++) {
      const target = attempt === 0 && !avoid.avoided ? home : await this.primary();
      const call = performance.now();
      try {
        const reply = await this.net.call(target, "PUT", `/app/log/private?id=${id}`, {
          body: { msg: value },
          headers: { "x-coco-wait": "commit" },
          timeoutMs: this.opts.writeTimeoutMs ?? 6_000,
          signal: this.abort.signal,
        });
        if (reply.status === 200) {
          this.history.push({
            clientId: c,
            input,
            output: { status: "ok" },
            call,
            return: performance.now(),
          });
          this.acked.set(id, value);
          this.stats.ok++;
          return;
        }
        if (reply.status === 503 && reply.errorCode === "NotPrimary") {
          // Refused before it ran (no primary known, or not this one): no effect. Retry on the
          // primary once there is one.
          this.forgetPrimary(target);
          this.stats.retried++;
          if (attempt > 0) await sleep(100);
          continue;
        }
        if (reply.status >= 400 && reply.status < 500) {
          this.unexpected.push(`PUT id=${id} on ${target.name}: ${reply.status} ${reply.text}`);
          return;
        }
        this.lastTrouble = `PUT id=${id} on ${target.name}: ${reply.status} ${reply.errorCode ?? reply.text.slice(0, 200)}`;
        this.forgetPrimary(target);
      } catch (e) {
        this.lastTrouble = `PUT id=${id} on ${target.name}: ${describeError(e)}`;
        if (target === home) this.avoidUntilAnswering(avoid);
        this.forgetPrimary(target);
        if (connectionRefused(e)) {
          // Never reached a server: no effect.
          this.stats.retried++;
          continue;
        }
      }
      // Any other answer (forwarding failed or timed out, commit timed out or was rolled back)
      // or error: the write may or may not take effect.
      this.history.push({ clientId: c, input, output: { status: "unknown" }, call, return: Infinity });
      this.stats.unknown++;
      await sleep(100);
      return;
    }
  }

  /**
   * Sends this client's writes to the primary until its home node answers again. A paused or
   * overloaded node accepts connections but answers nothing, so every write tried there would
   * wait out its whole (load-stretched) time-out: a fixed pause before trying it again wasted
   * most of a test's budget on a node paused for a minute.
   */
  private avoidUntilAnswering(avoid: Avoid): void {
    if (avoid.avoided) return;
    avoid.avoided = true;
    void (async () => {
      try {
        while (!this.stopped) {
          try {
            await this.net.call(avoid.home, "GET", "/node/state", {
              timeoutMs: 1_000,
              signal: this.abort.signal,
            });
            return; // any answer: it serves again
          } catch {
            await sleep(PROBE_EVERY_MS);
          }
        }
      } finally {
        avoid.avoided = false;
      }
    })();
  }

  /**
   * Reads an id some client wrote (or is writing) on any node, asking for a linearizable read
   * (run on the primary after a read-index round) answered only once the state it read is
   * committed, so it never shows a write that could still roll back.
   */
  private async read(c: number): Promise<void> {
    const id = this.keys[Math.floor(Math.random() * this.keys.length)]!;
    const target = this.net.nodes[Math.floor(Math.random() * this.net.nodes.length)]!;
    const call = performance.now();
    const input: KvRegisterInput = { op: "get", key: String(id) };
    try {
      const reply = await this.net.call(target, "GET", `/app/log/private?id=${id}`, {
        headers: { "x-coco-read": "linearizable", "x-coco-wait": "commit" },
        timeoutMs: 3_000,
        signal: this.abort.signal,
      });
      const ret = performance.now();
      if (reply.status === 200) {
        const value = reply.json<{ msg: string }>().msg;
        this.history.push({ clientId: c, input, output: { status: "ok", value }, call, return: ret });
        this.stats.reads++;
        return;
      }
      if (reply.status === 404 && reply.errorCode === "ResourceNotFound") {
        this.history.push({ clientId: c, input, output: { status: "ok", value: null }, call, return: ret });
        this.stats.reads++;
        return;
      }
      if (reply.status >= 400 && reply.status < 500) {
        this.unexpected.push(`GET id=${id} on ${target.name}: ${reply.status} ${reply.text}`);
        return;
      }
    } catch {
      // A read changes nothing: one without an answer is simply left out.
    }
    await sleep(50);
  }
}
