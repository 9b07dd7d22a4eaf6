import {
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  Raft,
  type RaftConfig,
  type Ready,
} from "../../src/consensus/index.ts";

/** One node of the test cluster: its Raft and what its "disk" holds. */
export interface TestNode {
  raft: Raft;
  /** The log as the node persisted it, following Ready's truncations and appends. */
  disk: Entry[];
  commits: number[];
  truncations: number[];
  readStates: Array<{ requestId: string; seqno: number }>;
  readsRejected: string[];
  snapshotsToSend: Array<{ to: NodeId; seqno: number }>;
  /** When false, entries are not reported durable until `persist(id)` is called. */
  autoPersist: boolean;
  /** The last hard state the node's Ready asked to write (durable before any message is sent). */
  hardState?: HardState;
  /** How much of `disk` was reported durable: what survives a crash. */
  durableSeqno: number;
  /** The configuration the node was created with. */
  members: NodeId[];
}

export interface ClusterOptions {
  /** Per-node election timeout fraction in [0, 1): 0 times out first. */
  timeouts?: Record<NodeId, number>;
  config?: Partial<RaftConfig>;
  /** Initial configuration; defaults to all ids. */
  members?: NodeId[];
}

const enc = new TextEncoder();

export function data(text: string): Uint8Array {
  return enc.encode(text);
}

/**
 * A tiny deterministic cluster for unit tests: messages queue in FIFO order and are delivered
 * when asked; links can be cut one way or both.
 */
export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Array<{ from: NodeId; to: NodeId; message: Message }> = [];
  private readonly blocked = new Set<string>();
  delivered = 0;
  /** Deliveries counted by "type>to". */
  readonly counts = new Map<string, number>();

  constructor(
    ids: NodeId[],
    private readonly options: ClusterOptions = {},
  ) {
    for (const id of ids) this.add(id, options.members ?? ids);
  }

  add(id: NodeId, members: NodeId[], extra: Partial<RaftConfig> = {}): TestNode {
    const node: TestNode = {
      raft: this.newRaft(id, members, extra),
      disk: [],
      commits: [],
      truncations: [],
      readStates: [],
      readsRejected: [],
      snapshotsToSend: [],
      autoPersist: true,
      durableSeqno: 0,
      members,
    };
    this.nodes.set(id, node);
    return node;
  }

  private newRaft(id: NodeId, members: NodeId[], extra: Partial<RaftConfig>): Raft {
    const fraction = this.options.timeouts?.[id] ?? 0.5;
    return new Raft({
      id,
      random: () => fraction,
      electionTicksMin: 10,
      electionTicksMax: 20,
      log: { start: { seqno: 0, view: 0, config: members }, entries: [] },
      ...this.options.config,
      ...extra,
    });
  }

  /**
   * The node crashes and restarts: it loses what was not durable (entries after the last
   * `persisted` report) and starts a new Raft from its disk and its last hard state. Messages
   * already queued to or from it stay queued.
   */
  restart(id: NodeId): void {
    const node = this.node(id);
    node.disk = node.disk.filter((e) => e.seqno <= node.durableSeqno);
    node.raft = this.newRaft(id, node.members, {
      log: { start: { seqno: 0, view: 0, config: node.members }, entries: [...node.disk] },
      ...(node.hardState ? { hardState: node.hardState } : {}),
    });
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  /** Carries out one node's Ready. */
  process(id: NodeId): Ready {
    const node = this.node(id);
    const ready = node.raft.ready();
    if (ready.hardState) node.hardState = { ...ready.hardState };
    if (ready.truncateAfter !== undefined) {
      node.truncations.push(ready.truncateAfter);
      node.disk = node.disk.filter((e) => e.seqno <= ready.truncateAfter!);
      node.durableSeqno = Math.min(node.durableSeqno, ready.truncateAfter);
    }
    for (const entry of ready.entriesToPersist) {
      const last = node.disk.at(-1);
      if (last && entry.seqno !== last.seqno + 1) {
        throw new Error(`${id}: entry ${entry.seqno} does not follow ${last.seqno} on disk`);
      }
      node.disk.push(entry);
    }
    for (const out of ready.messages) this.queue.push({ from: id, to: out.to, message: out.message });
    if (ready.commitSeqno !== undefined) node.commits.push(ready.commitSeqno);
    node.readStates.push(...ready.readStates);
    node.readsRejected.push(...ready.readsRejected);
    node.snapshotsToSend.push(...ready.snapshotsToSend);
    node.raft.advance(ready);
    if (node.autoPersist) this.persist(id);
    return ready;
  }

  /** Reports everything on the node's disk as durable. */
  persist(id: NodeId): void {
    const node = this.node(id);
    const last = node.disk.at(-1);
    if (last) {
      node.durableSeqno = last.seqno;
      node.raft.persisted(last.seqno, last.view);
    }
    if (node.raft.hasReady()) this.process(id);
  }

  processAll(): void {
    for (const id of this.nodes.keys()) if (this.raft(id).hasReady()) this.process(id);
  }

  cut(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Delivers queued messages (and the messages they cause) until the network is quiet. */
  deliver(limit = 100_000, stopWhen?: () => boolean): void {
    this.processAll();
    let steps = 0;
    while (this.queue.length > 0 && !stopWhen?.()) {
      if (++steps > limit) throw new Error("messages never stopped flowing");
      this.handOver(this.queue.shift()!);
    }
  }

  /** Delivers one message already taken off the queue, unless its link is cut. */
  handOver({ from, to, message }: { from: NodeId; to: NodeId; message: Message }): void {
    if (this.blocked.has(`${from}>${to}`)) return;
    const node = this.nodes.get(to);
    if (!node) return;
    node.raft.step(message);
    this.delivered++;
    const key = `${message.type}>${to}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (node.raft.hasReady()) this.process(to);
  }

  /** Drops whatever is in flight. */
  dropQueue(): void {
    this.queue = [];
  }

  tick(ids: NodeId[] = [...this.nodes.keys()], times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) {
        this.raft(id).tick();
        if (this.raft(id).hasReady()) this.process(id);
      }
      this.deliver();
    }
  }

  /** Ticks until `id` is primary (it must have the smallest timeout). */
  elect(id: NodeId, maxTicks = 200): void {
    for (let i = 0; i < maxTicks; i++) {
      if (this.raft(id).role === "primary") return;
      this.tick();
    }
    throw new Error(`${id} did not become primary`);
  }

  primaries(): NodeId[] {
    return [...this.nodes.keys()].filter((id) => this.raft(id).role === "primary");
  }

  /** Has the primary append `count` entries, the last one a signature if `sign`. */
  propose(id: NodeId, count: number, sign = true, config?: NodeId[]): Entry[] {
    const raft = this.raft(id);
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const seqno = raft.lastSeqno + 1 + i;
      const last = i === count - 1;
      const entry: Entry = {
        seqno,
        view: raft.view,
        isSignature: sign && last,
        data: data(`${id}:${seqno}`),
      };
      if (config && i === 0) entry.config = config;
      entries.push(entry);
    }
    if (!raft.propose(entries)) throw new Error(`${id} refused the proposal`);
    this.process(id);
    return entries;
  }
}
