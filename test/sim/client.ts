import type { KvInput, KvOutput, Operation } from "../utils/lincheck/index.ts";
import type { ClientOp } from "./app.ts";
import type { EventQueue } from "./events.ts";
import type { SimNetwork } from "./network.ts";
import type { ClientReply, Packet } from "./packets.ts";
import type { Prng } from "./prng.ts";

export type HistoryOp = Operation<KvInput, KvOutput>;

export interface ClientEnv {
  queue: EventQueue;
  prng: Prng;
  net: SimNetwork<Packet>;
  history: HistoryOp[];
  /** For each history entry, "client:number": the prefix of the request ids it was sent with. */
  historyKeys: string[];
  trace: ((line: string) => void) | null;
  /** The nodes a client may try (it does not know which is primary). */
  nodes: () => string[];
  keys: string[];
  opTimeoutMs: number;
  thinkMs: [number, number];
  /** No new operation starts after this time. */
  stopAt: number;
  /** Share of operations that are reads (default 0.4; the rest are puts and appends). */
  readShare?: number;
  /** Where to send, when the workload decides (null or absent: the client's own choice). */
  route?: (() => string | null) | null;
}

interface Current {
  op: ClientOp;
  call: number;
  number: number;
  attempt: number;
  requestId: string;
}

/**
 * A client of the simulated service. One operation at a time, sent to whichever node it thinks is
 * primary. A "not primary" answer is a definite failure, so it retries elsewhere; silence until
 * the time-out leaves a write's outcome unknown (it may still commit), recorded as such. Reads
 * are retried freely (they change nothing); a read that never returns is left out.
 */
export class SimClient {
  readonly name: string;
  private target: string | null = null;
  private current: Current | null = null;
  private count = 0;
  readonly stats = { ok: 0, unknown: 0, redirects: 0 };

  constructor(
    readonly index: number,
    private readonly env: ClientEnv,
  ) {
    this.name = `client${index}`;
  }

  start(): void {
    this.env.queue.after(this.env.prng.between(...this.env.thinkMs), () => this.next());
  }

  get busy(): boolean {
    return this.current !== null;
  }

  private next(): void {
    const { queue, prng, keys } = this.env;
    if (queue.now >= this.env.stopAt) return;
    const number = ++this.count;
    const key = prng.pick(keys);
    const roll = prng.float();
    const op: ClientOp =
      roll < (this.env.readShare ?? 0.4)
        ? { kind: "get", key }
        : { kind: roll < 0.6 ? "put" : "append", key, value: `${this.index}.${number};` };
    this.current = { op, call: queue.now, number, attempt: 0, requestId: "" };
    this.send();
    const current = this.current;
    queue.after(this.env.opTimeoutMs, () => {
      if (this.current !== current) return;
      this.finish(current.op.kind === "get" ? null : { status: "unknown" });
    });
  }

  private send(): void {
    const current = this.current!;
    const nodes = this.env.nodes();
    const routed = this.env.route?.() ?? null;
    if (routed !== null) this.target = routed;
    if (this.target === null || !nodes.includes(this.target)) this.target = this.env.prng.pick(nodes);
    current.attempt++;
    current.requestId = `${this.name}:${current.number}:${current.attempt}`;
    this.env.net.send(
      this.name,
      this.target,
      {
        kind: "request",
        request: { client: this.name, requestId: current.requestId, op: current.op },
      },
      false,
    );
    if (current.op.kind === "get") {
      // Reads are safe to repeat: if this attempt hears nothing, try another node.
      const requestId = current.requestId;
      this.env.queue.after(Math.floor(this.env.opTimeoutMs / 4), () => {
        if (this.current?.requestId !== requestId) return;
        this.target = null;
        this.send();
      });
    }
  }

  receive(packet: Packet): void {
    if (packet.kind !== "reply") return;
    const reply: ClientReply = packet.reply;
    const current = this.current;
    if (!current || reply.requestId !== current.requestId) return;
    if (reply.status === "ok") {
      this.finish({ status: "ok", ...(current.op.kind === "get" ? { value: reply.value ?? "" } : {}) });
      return;
    }
    this.stats.redirects++;
    this.target = reply.leader;
    const requestId = current.requestId;
    this.env.queue.after(this.env.prng.between(2, 20), () => {
      if (this.current?.requestId === requestId) this.send();
    });
  }

  /** Records the operation (null: leave it out) and moves on. */
  private finish(output: KvOutput | null): void {
    const current = this.current!;
    this.current = null;
    const { op } = current;
    const input: KvInput =
      op.kind === "get" ? { op: "get", key: op.key } : { op: op.kind, key: op.key, value: op.value };
    if (output) {
      const returned = output.status === "unknown" ? Number.POSITIVE_INFINITY : this.env.queue.now;
      this.env.history.push({ clientId: this.index, input, output, call: current.call, return: returned });
      this.env.historyKeys.push(`${this.name}:${current.number}`);
      if (output.status === "ok") this.stats.ok++;
      else this.stats.unknown++;
    }
    this.env.trace?.(`${this.name} ${describe(input, output)}`);
    this.env.queue.after(this.env.prng.between(...this.env.thinkMs), () => this.next());
  }
}

function describe(input: KvInput, output: KvOutput | null): string {
  const args = input.op === "get" ? input.key : `${input.key}, ${input.value}`;
  if (!output) return `${input.op}(${args}) gave up`;
  if (output.status === "unknown") return `${input.op}(${args}) timed out`;
  return `${input.op}(${args}) -> ${output.value === undefined ? "ok" : JSON.stringify(output.value)}`;
}
