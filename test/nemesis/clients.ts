/**
 * Clients for the nemesis: concurrent loops that write, read (linearizable and local) and
 * compare-and-set a few registers through different nodes, and write never-overwritten records,
 * recording every operation with its invoke and complete times (`performance.now()`, one clock
 * for all clients) for the linearizability checker.
 *
 * Outcomes, as test/e2e/workload.ts classifies them: a 200 is `ok`; 503 NotPrimary or a refused
 * connection proves the request did nothing (a write becomes `fail`, a read is left out); any
 * other answer or error leaves a write or CAS `unknown` (it may take effect at any later time).
 * Local reads may be stale by design, so they are kept apart and only checked to show values
 * some client wrote.
 */
import type { CasInput, CasOutput, Operation } from "../utils/lincheck/index.ts";
import { type NsCluster, type NsNode, sleep } from "./cluster.ts";
import type { Random } from "./random.ts";

export type CasOp = Operation<CasInput, CasOutput> & { node: string };

export interface ClientOptions {
  clients: number;
  /** Registers the clients share (each judged on its own). */
  registers: number;
  requestTimeoutMs: number;
}

const WRITE_HEADERS = { "x-coco-wait": "commit" };
const LINEARIZABLE = { "x-coco-read": "linearizable", "x-coco-wait": "commit" };

function refused(e: unknown): boolean {
  for (let err = e as { code?: string; cause?: unknown } | undefined; err; err = err.cause as typeof err) {
    if (err.code === "ECONNREFUSED") return true;
  }
  return false;
}

type Timed =
  | { call: number; ret: number; status: number; code?: string; text: string }
  | { call: number; error: unknown };

export class Clients {
  /** Per register: its operations. */
  readonly histories: CasOp[][];
  /** Records written to unique ids (never overwritten): acknowledged ones, and every attempt. */
  readonly acked = new Map<number, string>();
  readonly attempted = new Map<number, string>();
  /** Local (possibly stale) reads: register, value seen. */
  readonly localReads: Array<{ register: number; value: number | null }> = [];
  readonly written = new Set<number>();
  readonly unexpected: string[] = [];
  readonly stats = { ok: 0, fail: 0, unknown: 0, reads: 0, localReads: 0, records: 0 };
  /** Completion latencies (ms) of acknowledged writes and records, and when each completed. */
  readonly commits: Array<{ at: number; latencyMs: number }> = [];
  private stopping = false;
  private loops: Promise<void>[] = [];
  private nextValue = 1;

  constructor(
    private readonly cluster: NsCluster,
    private readonly opts: ClientOptions,
    private readonly random: Random,
  ) {
    this.histories = Array.from({ length: opts.registers }, () => []);
  }

  start(): void {
    this.loops = Array.from({ length: this.opts.clients }, (_, c) =>
      this.loop(c).catch((e) => {
        this.unexpected.push(`client ${c} stopped: ${(e as Error).stack}`);
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  get operations(): number {
    return this.histories.reduce((n, h) => n + h.length, 0);
  }

  private async loop(c: number): Promise<void> {
    for (let i = 0; !this.stopping; i++) {
      const node = this.cluster.nodes[this.random.int(this.cluster.nodes.length)]!;
      const register = this.random.int(this.opts.registers);
      const dice = this.random.next();
      if (dice < 0.25) await this.write(c, node, register);
      else if (dice < 0.5) await this.cas(c, node, register);
      else if (dice < 0.75) await this.read(c, node, register);
      else if (dice < 0.85) await this.localRead(node, register);
      else await this.record(c, node, i);
    }
  }

  private async timed(
    node: NsNode,
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<Timed> {
    const call = performance.now();
    try {
      const reply = await this.cluster.call(node, method, path, {
        body,
        headers,
        timeoutMs: this.opts.requestTimeoutMs,
      });
      return { call, ret: performance.now(), status: reply.status, code: reply.errorCode, text: reply.text };
    } catch (error) {
      return { call, error };
    }
  }

  /** Push an outcome of a write-like op: ok, fail (no effect), or unknown. */
  private settle(register: number, op: CasOp): void {
    this.histories[register]!.push(op);
    if (op.output.status === "ok") this.stats.ok++;
    else if (op.output.status === "fail") this.stats.fail++;
    else this.stats.unknown++;
  }

  private noEffect(r: Timed): boolean {
    if ("error" in r) return refused(r.error);
    return (
      (r.status === 503 && r.code === "NotPrimary") || (r.status === 409 && r.code === "TransactionConflict")
    );
  }

  private async write(c: number, node: NsNode, register: number): Promise<void> {
    const value = this.nextValue++;
    this.written.add(value);
    const r = await this.timed(
      node,
      "PUT",
      `/app/log/private?id=${register}`,
      { msg: String(value) },
      WRITE_HEADERS,
    );
    const input: CasInput = { op: "write", value };
    const base = { clientId: c, input, node: node.name, call: r.call };
    if ("status" in r && r.status === 200) {
      this.commits.push({ at: r.ret, latencyMs: r.ret - r.call });
      this.settle(register, { ...base, output: { status: "ok" }, return: r.ret });
    } else if (this.noEffect(r)) {
      this.settle(register, {
        ...base,
        output: { status: "fail" },
        return: "ret" in r ? r.ret : performance.now(),
      });
    } else {
      this.note(node, "PUT", r);
      this.settle(register, { ...base, output: { status: "unknown" }, return: Number.POSITIVE_INFINITY });
      await sleep(50);
    }
  }

  /** CAS from a value recently seen on this register (or one it may hold) to a new value. */
  private async cas(c: number, node: NsNode, register: number): Promise<void> {
    const from = this.guess(register);
    if (from === null) return this.write(c, node, register);
    const to = this.nextValue++;
    this.written.add(to);
    const r = await this.timed(
      node,
      "POST",
      `/app/log/private/cas?id=${register}`,
      { expected: String(from), msg: String(to) },
      LINEARIZABLE,
    );
    const input: CasInput = { op: "cas", from, to };
    const base = { clientId: c, input, node: node.name, call: r.call };
    if ("status" in r && r.status === 200) {
      const swapped = JSON.parse(r.text).swapped === true;
      if (swapped) this.commits.push({ at: r.ret, latencyMs: r.ret - r.call });
      this.settle(register, { ...base, output: { status: swapped ? "ok" : "fail" }, return: r.ret });
    } else if (this.noEffect(r)) {
      // No effect: as a CAS that did not swap would be, but it tells nothing of the value.
    } else {
      this.note(node, "CAS", r);
      this.settle(register, { ...base, output: { status: "unknown" }, return: Number.POSITIVE_INFINITY });
      await sleep(50);
    }
  }

  /** A value the register may hold: the last one a read saw, or one written to it. */
  private guess(register: number): number | null {
    const ops = this.histories[register]!;
    for (let i = ops.length - 1; i >= Math.max(0, ops.length - 8); i--) {
      const op = ops[i]!;
      if (op.input.op === "read" && op.output.status === "ok" && op.output.value != null)
        return op.output.value;
      if (op.input.op === "write" && op.output.status === "ok") return op.input.value;
      if (op.input.op === "cas" && op.output.status === "ok") return op.input.to;
    }
    return null;
  }

  private async read(c: number, node: NsNode, register: number): Promise<void> {
    const r = await this.timed(node, "GET", `/app/log/private?id=${register}`, undefined, LINEARIZABLE);
    const value = this.readValue(node, "GET", r);
    if (value === undefined) return;
    this.stats.reads++;
    this.histories[register]!.push({
      clientId: c,
      input: { op: "read" },
      output: { status: "ok", value },
      node: node.name,
      call: r.call,
      return: (r as { ret: number }).ret,
    });
  }

  private async localRead(node: NsNode, register: number): Promise<void> {
    const r = await this.timed(node, "GET", `/app/log/private?id=${register}`, undefined, {});
    const value = this.readValue(node, "GET local", r);
    if (value === undefined) return;
    this.stats.localReads++;
    this.localReads.push({ register, value });
  }

  /** A read's value (null: no record), or undefined when it had no answer to judge. */
  private readValue(node: NsNode, what: string, r: Timed): number | null | undefined {
    if ("error" in r) return undefined;
    if (r.status === 200) return Number(JSON.parse(r.text).msg);
    if (r.status === 404 && r.code === "ResourceNotFound") return null;
    if (r.status >= 400 && r.status < 500)
      this.unexpected.push(`${what} on ${node.name}: ${r.status} ${r.text}`);
    return undefined;
  }

  /** A record under a unique id in the public map, acknowledged once committed. */
  private async record(c: number, node: NsNode, i: number): Promise<void> {
    const id = (c + 1) * 1_000_000 + i;
    const msg = `c${c}-${i}`;
    this.attempted.set(id, msg);
    const r = await this.timed(node, "PUT", `/app/log/public?id=${id}`, { msg }, WRITE_HEADERS);
    if ("status" in r && r.status === 200) {
      this.acked.set(id, msg);
      this.stats.records++;
      this.commits.push({ at: r.ret, latencyMs: r.ret - r.call });
    } else if (!this.noEffect(r)) {
      this.note(node, "PUT record", r);
      await sleep(50);
    }
  }

  /** A 4xx other than the expected ones is a bug in Coco or in this test. */
  private note(node: NsNode, what: string, r: Timed): void {
    if ("status" in r && r.status >= 400 && r.status < 500 && r.status !== 404)
      this.unexpected.push(`${what} on ${node.name}: ${r.status} ${r.text}`);
  }
}
