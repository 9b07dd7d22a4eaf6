import type { Socket } from "node:net";

/**
 * Frames larger than this are handed to the socket a slice at a time, each once the one before has
 * reached the kernel ('drain'). A whole 8 MiB frame would sit in the socket's buffer as one write
 * until its last byte entered the kernel, so nothing would show that the peer is taking it; with
 * slices, each 'drain' while the kernel's buffer was full shows that the peer's TCP acknowledged
 * data (see `backlogged` and `drains`). TLS records are at most 16 KiB, so slicing costs nothing
 * on the wire.
 */
export const SLICE_BYTES = 256 * 1024;

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
  #drains = 0;
  /** A large frame partly handed to the socket: the rest goes out before any other frame. */
  #partial: { frame: Buffer; offset: number } | undefined;
  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    this.#drains++;
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
  /**
   * Bytes were handed to the socket and it has not yet passed them all to the kernel: the kernel's
   * send buffer was full when they were written (or the write is still in progress).
   */
  get backlogged(): boolean {
    return this.#waitingDrain;
  }
  /**
   * 'drain' events seen: each means everything handed to the socket reached the kernel. One that
   * follows a moment when `backlogged` was true means the kernel made room, which only the peer's
   * TCP acknowledgements do: the peer is taking our bytes.
   */
  get drains(): number {
    return this.#drains;
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
    // The socket took the start of this frame with it: the rest alone would be garbage to the
    // next connection's reader.
    this.#partial = undefined;
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
    this.#partial = undefined;
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
    while (this.#partial !== undefined || this.#head < this.#items.length) {
      if (socket.destroyed || !socket.writable) return;
      let more: boolean;
      if (this.#partial !== undefined) {
        more = this.#writeSlice(socket, this.#partial);
      } else {
        const item = this.#items[this.#head] as Item;
        this.#items[this.#head++] = undefined as unknown as Item;
        this.#queuedBytes -= item.frame.length;
        this.#sent++;
        if (item.frame.length > SLICE_BYTES) {
          this.#partial = { frame: item.frame, offset: 0 };
          more = this.#writeSlice(socket, this.#partial);
        } else {
          more = socket.write(item.frame);
        }
        item.written?.(socket);
      }
      if (!more) {
        this.#waitingDrain = true;
        socket.once("drain", this.#onDrain);
        return;
      }
    }
  }

  #writeSlice(socket: Socket, partial: { frame: Buffer; offset: number }): boolean {
    const end = Math.min(partial.offset + SLICE_BYTES, partial.frame.length);
    const slice = partial.frame.subarray(partial.offset, end);
    partial.offset = end;
    if (end === partial.frame.length) this.#partial = undefined;
    return socket.write(slice);
  }
}
