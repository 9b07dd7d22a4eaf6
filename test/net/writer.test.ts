import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { test } from "node:test";
import { FrameWriter, SLICE_BYTES } from "../../src/net/writer.ts";

/** A socket stand-in whose write() reports a full buffer once `capacity` frames are pending. */
class FakeSocket extends EventEmitter {
  written: Buffer[] = [];
  pending = 0;
  destroyed = false;
  writable = true;
  constructor(readonly capacity: number) {
    super();
  }
  write(frame: Buffer): boolean {
    this.written.push(frame);
    this.pending++;
    return this.pending < this.capacity;
  }
  /** The kernel took everything: emit 'drain'. */
  flush(): void {
    this.pending = 0;
    this.emit("drain");
  }
}

const frame = (n: number, size = 10) => Buffer.alloc(size, n);

test("frames queue while detached, up to the byte bound; the rest are dropped and counted", () => {
  const w = new FrameWriter(35);
  assert.equal(w.enqueue(frame(1)), true);
  assert.equal(w.enqueue(frame(2)), true);
  assert.equal(w.enqueue(frame(3)), true);
  assert.equal(w.enqueue(frame(4)), false);
  assert.equal(w.enqueue(frame(5, 5)), true); // a smaller one still fits
  assert.equal(w.queuedBytes, 35);
  assert.equal(w.dropped, 1);
  const s = new FakeSocket(100);
  w.attach(s as unknown as Socket);
  assert.deepEqual(
    s.written.map((f) => f[0]),
    [1, 2, 3, 5],
  );
  assert.equal(w.queuedBytes, 0);
  assert.equal(w.sent, 4);
});

test("no write after write() returned false until 'drain'", () => {
  const w = new FrameWriter(1_000);
  const s = new FakeSocket(2);
  w.attach(s as unknown as Socket);
  for (let i = 0; i < 6; i++) w.enqueue(frame(i));
  assert.equal(s.written.length, 2, "stops at the first false");
  assert.equal(w.queuedBytes, 40);
  s.flush();
  assert.equal(s.written.length, 4);
  s.flush();
  s.flush();
  assert.deepEqual(
    s.written.map((f) => f[0]),
    [0, 1, 2, 3, 4, 5],
  );
  assert.equal(w.queuedBytes, 0);
});

test("a queue that outlives a socket resumes, in order, on the next one", () => {
  const w = new FrameWriter(1_000);
  const first = new FakeSocket(1);
  w.attach(first as unknown as Socket);
  w.enqueue(frame(1));
  w.enqueue(frame(2));
  w.detach(first as unknown as Socket);
  first.flush(); // a late 'drain' from the old socket must not write into it
  assert.equal(first.written.length, 1);
  const second = new FakeSocket(100);
  w.attach(second as unknown as Socket);
  w.enqueue(frame(3));
  assert.deepEqual(
    second.written.map((f) => f[0]),
    [2, 3],
  );
});

test("detach(other) leaves the current socket in place; clear() empties the queue", () => {
  const w = new FrameWriter(1_000);
  const current = new FakeSocket(100);
  w.attach(current as unknown as Socket);
  w.detach(new FakeSocket(1) as unknown as Socket);
  w.enqueue(frame(9));
  assert.equal(current.written.length, 1);
  w.detach();
  w.enqueue(frame(1));
  w.clear();
  assert.equal(w.queuedBytes, 0);
  w.attach(current as unknown as Socket);
  assert.equal(current.written.length, 1);
});

test("the written callback names the socket the frame went to", () => {
  const w = new FrameWriter(1_000);
  const seen: unknown[] = [];
  w.enqueue(frame(1), (socket) => seen.push(socket));
  assert.equal(seen.length, 0);
  const s = new FakeSocket(100);
  w.attach(s as unknown as Socket);
  assert.deepEqual(seen, [s]);
});

test("a destroyed socket is not written to", () => {
  const w = new FrameWriter(1_000);
  const s = new FakeSocket(100);
  s.destroyed = true;
  w.attach(s as unknown as Socket);
  w.enqueue(frame(1));
  assert.equal(s.written.length, 0);
  assert.equal(w.queuedBytes, 10);
});

/** Records cork()/uncork(): frames written while corked leave as one write. */
class CorkingSocket extends FakeSocket {
  writes: number[][] = [];
  #corked: number[] | undefined;
  cork(): void {
    this.#corked = [];
  }
  uncork(): void {
    if (this.#corked && this.#corked.length > 0) this.writes.push(this.#corked);
    this.#corked = undefined;
  }
  override write(frame: Buffer): boolean {
    if (this.#corked) this.#corked.push(frame[0]!);
    else this.writes.push([frame[0]!]);
    return super.write(frame);
  }
}

test("coalescing: frames queued in one synchronous run leave together, in order, as one write", async () => {
  const w = new FrameWriter(1_000, { coalesce: true });
  const s = new CorkingSocket(100);
  w.attach(s as unknown as Socket);
  w.enqueue(frame(1));
  w.enqueue(frame(2));
  w.enqueue(frame(3));
  assert.equal(s.written.length, 0, "nothing is written before the run ends");
  await Promise.resolve();
  assert.deepEqual(s.writes, [[1, 2, 3]]);
  w.enqueue(frame(4));
  await Promise.resolve();
  assert.deepEqual(s.writes, [[1, 2, 3], [4]], "a lone frame is written uncorked");
  assert.equal(w.sent, 4);
  assert.equal(w.queuedBytes, 0);
});

test("coalescing: still no write after write() returned false until 'drain', and nothing is lost", async () => {
  const w = new FrameWriter(1_000, { coalesce: true });
  const s = new CorkingSocket(2);
  w.attach(s as unknown as Socket);
  for (let i = 0; i < 5; i++) w.enqueue(frame(i));
  await Promise.resolve();
  assert.equal(s.written.length, 2, "stops at the first false");
  w.enqueue(frame(5));
  await Promise.resolve();
  assert.equal(s.written.length, 2, "waits for 'drain'");
  s.flush();
  s.flush();
  assert.deepEqual(
    s.written.map((f) => f[0]),
    [0, 1, 2, 3, 4, 5],
  );
  assert.equal(w.queuedBytes, 0);
});

test("coalescing: frames queued while detached go out on the next socket; a detached writer writes nothing", async () => {
  const w = new FrameWriter(1_000, { coalesce: true });
  const first = new CorkingSocket(100);
  w.attach(first as unknown as Socket);
  w.enqueue(frame(1));
  w.detach();
  await Promise.resolve();
  assert.equal(first.written.length, 0);
  const second = new CorkingSocket(100);
  w.attach(second as unknown as Socket);
  assert.deepEqual(second.writes, [[1]]);
});

test("a frame over SLICE_BYTES goes out a slice per 'drain' (counted, backlogged meanwhile); a detach mid-frame drops its rest", () => {
  const w = new FrameWriter(10 * SLICE_BYTES);
  const big = Buffer.alloc(2 * SLICE_BYTES + 5, 7);
  w.enqueue(big);
  w.enqueue(frame(9));
  const s = new FakeSocket(1);
  w.attach(s as unknown as Socket);
  assert.deepEqual(
    s.written.map((f) => f.length),
    [SLICE_BYTES],
  );
  assert.equal(w.backlogged, true);
  assert.equal(w.sent, 1);
  s.flush();
  assert.equal(w.drains, 1);
  assert.deepEqual(
    s.written.map((f) => f.length),
    [SLICE_BYTES, SLICE_BYTES],
  );
  s.flush();
  s.flush();
  assert.ok(Buffer.concat(s.written.slice(0, 3)).equals(big), "the slices make up the frame, in order");
  assert.deepEqual(s.written[3], frame(9));
  assert.equal(w.backlogged, true);
  assert.equal(w.drains, 3);

  // Cut off after the first slice: the next connection starts with the next whole frame.
  w.enqueue(big);
  w.enqueue(frame(8));
  s.flush();
  const cut = s.written.length;
  w.detach();
  const next = new FakeSocket(100);
  w.attach(next as unknown as Socket);
  assert.equal(s.written.length, cut);
  assert.deepEqual(next.written, [frame(8)]);
  assert.equal(w.backlogged, false);
});
