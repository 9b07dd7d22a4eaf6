import type { NodeId, Raft } from "../../src/consensus/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import type { LedgerState } from "../../src/ledger/index.ts";
import { APP_MAP, appState, executeWrite, operationOf, type WriteRegistry } from "./app.ts";
import type { SimNetwork } from "./network.ts";
import type { ClientReply, ClientRequest, Packet } from "./packets.ts";

/** What a node's request handling needs of its node. */
export interface RequestsHost {
  readonly id: NodeId;
  readonly net: SimNetwork<Packet>;
  readonly writes: WriteRegistry;
  /** A primary signs after this many entries. */
  readonly signEvery: number;
  /** The planted bug `NodeBugs.readUncommitted`. */
  readonly readUncommitted: boolean;
  raft(): Raft;
  state(): LedgerState;
  /** Primary, in the view its engine writes entries in. */
  canWrite(): boolean;
  sign(): void;
  /** The replica carries out what consensus asks now (a read-index round). */
  process(): void;
  committedSnapshot(): StoreSnapshot;
  trace(line: string): void;
}

interface PendingWrite {
  view: number;
  requestId: string;
  client: string;
}

interface PendingRead {
  requestId: string;
  client: string;
  key: string;
  seqno: number;
}

const encoder = new TextEncoder();

/**
 * A simulated node's client requests, as Coco's rpc layer serves them: writes run as
 * transactions on the primary and are answered once committed; reads wait for a confirmed read
 * index and are answered from the committed state.
 */
export class ClientRequests {
  private pendingWrites = new Map<number, PendingWrite>();
  private readsById = new Map<string, { client: string; key: string }>();
  private readsWaiting: PendingRead[] = [];

  constructor(private readonly host: RequestsHost) {}

  onRequest(request: ClientRequest): void {
    const raft = this.host.raft();
    const state = this.host.state();
    if (!this.host.canWrite()) {
      const leader = raft.leader === this.host.id ? null : raft.leader;
      this.reply(request.client, { requestId: request.requestId, status: "not_primary", leader });
      return;
    }
    const { op } = request;
    if (op.kind === "get") {
      this.readsById.set(request.requestId, { client: request.client, key: op.key });
      raft.readIndex(request.requestId);
      this.host.process();
      return;
    }
    const tx = state.store.begin();
    executeWrite(tx, op);
    const outcome = state.commitTx(tx, this.host.writes.claimsFor(operationOf(request.requestId)));
    if (!outcome.ok || outcome.seqno === null)
      throw new Error(`${this.host.id}: a client write did not commit`);
    this.host.trace(
      `write ${operationOf(request.requestId)} ${op.kind} ${op.key} at ${outcome.view}.${outcome.seqno}`,
    );
    this.pendingWrites.set(outcome.seqno, {
      view: outcome.view,
      requestId: request.requestId,
      client: request.client,
    });
    if (state.txSinceSignature >= this.host.signEvery) this.host.sign();
  }

  /** Consensus confirmed (or, with `null`, refused) the read index a read asked for. */
  readReady(requestId: string, seqno: number | null): void {
    const read = this.readsById.get(requestId);
    this.readsById.delete(requestId);
    if (!read) return;
    if (seqno === null) {
      this.reply(read.client, { requestId, status: "not_primary", leader: null });
      return;
    }
    this.readsWaiting.push({ requestId, seqno, ...read });
    this.serveReads();
  }

  /** The engine's commit point moved to `commit`: answer the writes it covers. */
  committed(commit: number): void {
    const state = this.host.state();
    for (const [seqno, pending] of this.pendingWrites) {
      if (seqno > commit) continue;
      this.pendingWrites.delete(seqno);
      // The engine says whether this transaction, in the view it was made, is what committed.
      if (state.txStatus(pending.view, seqno) === "Committed")
        this.reply(pending.client, { requestId: pending.requestId, status: "ok" });
    }
  }

  /** A snapshot replaced the engine's state up to `seqno`: the writes it covers get no answer. */
  replacedUpTo(seqno: number): void {
    for (const pending of this.pendingWrites.keys()) if (pending <= seqno) this.pendingWrites.delete(pending);
  }

  serveReads(): void {
    if (this.readsWaiting.length === 0) return;
    const waiting = this.readsWaiting;
    this.readsWaiting = [];
    for (const read of waiting) {
      if (this.host.readUncommitted) {
        const stored = this.host.state().store.read(APP_MAP, encoder.encode(read.key));
        const value = stored ? new TextDecoder().decode(stored) : "";
        this.reply(read.client, { requestId: read.requestId, status: "ok", value });
      } else if (read.seqno <= this.host.state().commitSeqno) {
        // Reads see the committed state: the primary's store also holds writes not yet committed.
        const value = appState(this.host.committedSnapshot()).get(read.key) ?? "";
        this.reply(read.client, { requestId: read.requestId, status: "ok", value });
      } else {
        this.readsWaiting.push(read);
      }
    }
  }

  /** The node crashed: what it was serving is lost with it. */
  clear(): void {
    this.pendingWrites.clear();
    this.readsById.clear();
    this.readsWaiting = [];
  }

  private reply(client: string, reply: ClientReply): void {
    this.host.net.send(this.host.id, client, { kind: "reply", reply }, false);
  }
}
