import type { Socket } from "node:net";

interface Item {
  frame: Buffer;
  /** Called when the frame is handed to a socket (requests bind to that connection). */
  written?: (socket: Socket) => void;
}

/**
 * A bounded FIFO of encoded frames and the pump that moves them into a socket. It never lets
 * more than `maxQueuedBytes` wait here: a frame that does not fit is refused (tail drop), because
 * Raft tolerates loss but a stalled peer must not grow memory without bound. It writes only
 * while the socket accepts data; once write() returns false it waits for 'drain'. The queue
 * outlives sockets: frames queued while disconnected go out on the next connection.
 *
 * With `coalesce`, enqueue() only schedules the pump for the end of the current synchronous run
 * (a microtask), and the pump writes everything queued by then corked, as one socket write: the
 * messages of one Ready, or the answers to several messages that arrived in one read, then cost
 * one TLS record and one system call instead of one each. Without it, enqueue() writes at once.
 */
export class FrameWriter {
  readonly #maxQueuedBytes: number;
  #items: Item[] = [];
  #head = 0;
  #queuedBytes = 0;
  #socket: Socket | undefined;
  #waitingDrain = false;
  readonly #coalesce: boolean;
  #pumpScheduled = false;
  #sent = 0;
  #dropped = 0;
  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    this.#pump();
  };

  constructor(maxQueuedBytes: number, opts: { coalesce?: boolean } = {}) {
    this.#maxQueuedBytes = maxQueuedBytes;
    this.#coalesce = opts.coalesce === true;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }
  /** Frames handed to a socket. */
  get sent(): number {
    return this.#sent;
  }
  /** Frames refused because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues a frame; false (and counted as dropped) if it does not fit under the bound. */
  enqueue(frame: Buffer, written?: (socket: Socket) => void): boolean {
    if (this.#queuedBytes + frame.length > this.#maxQueuedBytes) {
      this.#dropped++;
      return false;
    }
    this.#items.push(written ? { frame, written } : { frame });
    this.#queuedBytes += frame.length;
    if (!this.#coalesce) this.#pump();
    else if (!this.#pumpScheduled) {
      this.#pumpScheduled = true;
      queueMicrotask(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
    return true;
  }

  /** Starts writing into `socket` (an established, authenticated connection). */
  attach(socket: Socket): void {
    this.detach();
    this.#socket = socket;
    this.#pump();
  }

  /** Stops writing; with `only`, only if that is the socket in use (a newer one may have replaced it). */
  detach(only?: Socket): void {
    if (only !== undefined && only !== this.#socket) return;
    this.#socket?.off("drain", this.#onDrain);
    this.#socket = undefined;
    this.#waitingDrain = false;
  }

  /**
   * Takes a frame back out of the queue if it has not been handed to a socket yet (a request
   * its sender gave up on). True if it was still queued: the peer will never see it.
   */
  withdraw(frame: Buffer): boolean {
    for (let i = this.#head; i < this.#items.length; i++) {
      if (this.#items[i]?.frame !== frame) continue;
      this.#items.splice(i, 1);
      this.#queuedBytes -= frame.length;
      return true;
    }
    return false;
  }

  /** Forgets every queued frame (the peer was removed). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#queuedBytes = 0;
  }

  #pump(): void {
    const socket = this.#socket;
    if (!socket || this.#waitingDrain) return;
    const corked = this.#coalesce && this.#items.length - this.#head > 1;
    if (corked) socket.cork();
    try {
      this.#write(socket);
    } finally {
      if (corked) socket.uncork();
    }
    // Compact now and then, so the array does not grow with every frame ever sent.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
  }

  /** Hands queued frames to `socket` until the queue is empty or the socket asks to wait. */
  #write(socket: Socket): void {
    while (this.#head < this.#items.length) {
      if (socket.destroyed || !socket.writable) return;
      const item = this.#items[this.#head] as Item;
      this.#items[this.#head++] = undefined as unknown as Item;
      this.#queuedBytes -= item.frame.length;
      this.#sent++;
      const more = socket.write(item.frame);
      item.written?.(socket);
      if (!more) {
        this.#waitingDrain = true;
        socket.once("drain", this.#onDrain);
        return;
      }
    }
  }
}
