import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { context, Router } from "zeromq";
import { decode, encode, MessageType, pb } from "./protos.ts";

/** A transaction processor connection and the family versions it registered. */
export interface Processor {
  identity: Buffer;
  key: string;
  family: string;
  version: string;
  namespaces: string[];
}

/** What a processor asks about state while it processes a transaction (by context id). */
export interface ContextHandler {
  handle(type: number, content: Uint8Array): Uint8Array;
  responseType(type: number): number | undefined;
}

export class ProcessorGone extends Error {}

interface Pending {
  processor: string;
  resolve(content: Uint8Array): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The validator side of Sawtooth's processor protocol on a ZeroMQ ROUTER socket: processors
 * register family versions, receive `TpProcessRequest`s and ask for state by context id. A
 * processor that stops answering (a send to it fails: the socket is mandatory-routed; or a request
 * times out) is dropped and its requests fail. ZeroMQ's socket monitor is not used: an open
 * observer blocks the process's exit once a peer has disconnected.
 */
// A stopping process must not wait on messages queued for processors that are gone: without this,
// ZeroMQ's context termination at exit blocks on any socket (ours or an SDK's) still lingering.
context.blocky = false;

export class ProcessorServer {
  private readonly socket = new Router({ mandatory: true, linger: 0 });
  /** Registrations by connection identity (hex). */
  private readonly processors = new Map<string, Processor[]>();
  private readonly pending = new Map<string, Pending>();
  private readonly contexts = new Map<string, ContextHandler>();
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;
  private roundRobin = 0;

  private constructor(
    private readonly log: Logger,
    private readonly requestTimeoutMs: number,
  ) {}

  static async listen(address: string, log: Logger, requestTimeoutMs: number): Promise<ProcessorServer> {
    const server = new ProcessorServer(log, requestTimeoutMs);
    await server.socket.bind(address);
    void server.receive();
    return server;
  }

  get endpoint(): string {
    return this.socket.lastEndpoint ?? "";
  }

  /** A processor of the family version, chosen in turn among those registered; `exclude` skips some. */
  pick(family: string, version: string, exclude: Set<string> = new Set()): Processor | undefined {
    const all = [...this.processors.values()]
      .flat()
      .filter((p) => p.family === family && p.version === version && !exclude.has(p.key));
    if (all.length === 0) return undefined;
    return all[this.roundRobin++ % all.length];
  }

  openContext(handler: ContextHandler): string {
    const id = randomBytes(16).toString("hex");
    this.contexts.set(id, handler);
    return id;
  }

  closeContext(id: string): void {
    this.contexts.delete(id);
  }

  /** Sends a request and resolves with the answer's content; rejects with ProcessorGone. */
  request(processor: Processor, type: number, content: Uint8Array): Promise<Uint8Array> {
    const correlationId = randomBytes(16).toString("hex");
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        this.drop(processor.key, "it did not answer in time");
        reject(new ProcessorGone(`the processor did not answer within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(correlationId, { processor: processor.key, resolve, reject, timer });
      this.send(processor.identity, type, correlationId, content).catch((e) => {
        this.settle(correlationId)?.reject(
          new ProcessorGone(`the processor is gone: ${(e as Error).message}`),
        );
        this.drop(processor.key, "a send failed");
      });
    });
  }

  private settle(correlationId: string): Pending | undefined {
    const p = this.pending.get(correlationId);
    if (!p) return undefined;
    this.pending.delete(correlationId);
    clearTimeout(p.timer);
    return p;
  }

  private send(identity: Buffer, type: number, correlationId: string, content: Uint8Array): Promise<void> {
    const frame = encode(pb.Message, { messageType: type, correlationId, content });
    // zeromq sockets take one send at a time; chain them.
    const next = this.sending.then(() => this.socket.send([identity, frame]));
    this.sending = next.catch(() => undefined);
    return next;
  }

  private async receive(): Promise<void> {
    try {
      for await (const [identity, frame] of this.socket) {
        if (!identity || !frame) continue;
        try {
          this.onMessage(identity, frame);
        } catch (e) {
          this.log.warn({ err: e }, "sawtooth: a bad message from a transaction processor");
        }
      }
    } catch (e) {
      if (!this.closed) this.log.error({ err: e }, "sawtooth: the processor socket failed");
    }
  }

  private onMessage(identity: Buffer, frame: Buffer): void {
    const message = decode<{ messageType: number; correlationId: string; content: Buffer }>(
      pb.Message,
      frame,
    );
    const { messageType: type, correlationId, content } = message;
    const key = identity.toString("hex");
    const reply = (t: number, body: Uint8Array) => {
      this.send(identity, t, correlationId, body).catch(() => this.drop(key, "a reply failed"));
    };
    switch (type) {
      case MessageType.TP_REGISTER_REQUEST: {
        const r = decode<{ family: string; version: string; namespaces: string[] }>(
          pb.TpRegisterRequest,
          content,
        );
        const ok = r.family !== "" && r.version !== "" && r.namespaces.every((n) => /^[0-9a-f]*$/.test(n));
        if (ok) {
          const list = this.processors.get(key) ?? [];
          list.push({ identity, key, family: r.family, version: r.version, namespaces: r.namespaces });
          this.processors.set(key, list);
          this.log.info(
            { family: r.family, version: r.version },
            "sawtooth: transaction processor registered",
          );
        }
        reply(MessageType.TP_REGISTER_RESPONSE!, encode(pb.TpRegisterResponse, { status: ok ? 1 : 2 }));
        return;
      }
      case MessageType.TP_UNREGISTER_REQUEST:
        this.drop(key, "it unregistered");
        reply(MessageType.TP_UNREGISTER_RESPONSE!, encode(pb.TpUnregisterResponse, { status: 1 }));
        return;
      case MessageType.PING_REQUEST:
        reply(MessageType.PING_RESPONSE!, encode(pb.PingResponse, {}));
        return;
      case MessageType.TP_PROCESS_RESPONSE:
      case MessageType.PING_RESPONSE:
        this.settle(correlationId)?.resolve(content);
        return;
    }
    // State, receipt and event requests name the context of the transaction being processed.
    const contextId = (decode<{ contextId: string }>(pb.TpStateGetRequest, content) as { contextId: string })
      .contextId;
    const context = this.contexts.get(contextId);
    const responseType = context?.responseType(type) ?? responseTypeOf(type);
    if (responseType === undefined) {
      this.log.warn({ type }, "sawtooth: an unexpected message from a transaction processor");
      return;
    }
    if (!context) {
      // Status 2 is AUTHORIZATION_ERROR or ERROR in every response of this protocol.
      reply(responseType, encode(responseMessage(type)!, { status: 2 }));
      return;
    }
    reply(responseType, context.handle(type, content));
  }

  private drop(key: string, why: string): void {
    if (!this.processors.delete(key)) return;
    this.log.info({ why }, "sawtooth: transaction processor dropped");
    for (const [id, p] of this.pending) {
      if (p.processor === key) this.settle(id)?.reject(new ProcessorGone(`the processor left: ${why}`));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.pending.keys()])
      this.settle(id)?.reject(new ProcessorGone("the node is stopping"));
    this.socket.close();
  }
}

const RESPONSES: Array<[string, string]> = [
  ["TP_STATE_GET_REQUEST", "TP_STATE_GET_RESPONSE"],
  ["TP_STATE_SET_REQUEST", "TP_STATE_SET_RESPONSE"],
  ["TP_STATE_DELETE_REQUEST", "TP_STATE_DELETE_RESPONSE"],
  ["TP_RECEIPT_ADD_DATA_REQUEST", "TP_RECEIPT_ADD_DATA_RESPONSE"],
  ["TP_EVENT_ADD_REQUEST", "TP_EVENT_ADD_RESPONSE"],
];

export function responseTypeOf(type: number): number | undefined {
  const found = RESPONSES.find(([req]) => MessageType[req] === type);
  return found ? MessageType[found[1]] : undefined;
}

function responseMessage(type: number) {
  if (type === MessageType.TP_STATE_GET_REQUEST) return pb.TpStateGetResponse;
  if (type === MessageType.TP_STATE_SET_REQUEST) return pb.TpStateSetResponse;
  if (type === MessageType.TP_STATE_DELETE_REQUEST) return pb.TpStateDeleteResponse;
  if (type === MessageType.TP_RECEIPT_ADD_DATA_REQUEST) return pb.TpReceiptAddDataResponse;
  if (type === MessageType.TP_EVENT_ADD_REQUEST) return pb.TpEventAddResponse;
  return undefined;
}

export { responseMessage };
