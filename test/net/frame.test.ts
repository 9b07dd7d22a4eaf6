import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { NetError } from "../../src/net/errors.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Cuts `bytes` at the given positions (taken modulo its length). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  return out;
}

test("frames survive any chunking of the stream, in order", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, cuts) => {
        const stream = concat(payloads.map(encodeFrame));
        const decoder = new FrameDecoder(300);
        const got = split(stream, cuts).flatMap((chunk) => decoder.push(chunk));
        assert.deepEqual(
          got.map((p) => Buffer.from(p).toString("hex")),
          payloads.map((p) => Buffer.from(p).toString("hex")),
        );
        assert.equal(decoder.bufferedBytes, 0);
      },
    ),
  );
});

test("the header is a big-endian u32 payload length", () => {
  const frame = encodeFrame(new Uint8Array([7, 8, 9]));
  assert.deepEqual([...frame], [0, 0, 0, 3, 7, 8, 9]);
});

test("an oversize length is refused as soon as the header arrives", () => {
  const decoder = new FrameDecoder(1024);
  assert.deepEqual(decoder.push(new Uint8Array([0, 0, 4])), []);
  assert.throws(
    () => decoder.push(new Uint8Array([1])),
    (err: unknown) =>
      err instanceof NetError && err.code === "frame" && /1025 bytes, more than the 1024/.test(err.message),
  );
  // The stream is dead after a failure: no later bytes are taken as a frame.
  assert.throws(() => decoder.push(encodeFrame(new Uint8Array([1]))), NetError);
});

test("a zero length is refused, and the error says where in the stream", () => {
  const decoder = new FrameDecoder(1024);
  const stream = concat([encodeFrame(new Uint8Array([1, 2])), new Uint8Array([0, 0, 0, 0])]);
  assert.throws(() => decoder.push(stream), /empty frame at stream offset 6/);
});

test("a frame split across many chunks is reassembled exactly", () => {
  const payload = new Uint8Array(200_000).map((_, i) => i % 251);
  const frame = encodeFrame(payload);
  const decoder = new FrameDecoder(1 << 20);
  const got: Uint8Array[] = [];
  for (let i = 0; i < frame.length; i += 997) got.push(...decoder.push(frame.subarray(i, i + 997)));
  assert.equal(got.length, 1);
  assert.ok(Buffer.from(got[0] as Uint8Array).equals(Buffer.from(payload)));
});

test("bad limits and empty payloads are refused", () => {
  assert.throws(() => new FrameDecoder(0), NetError);
  assert.throws(() => new FrameDecoder(2 ** 32), NetError);
  assert.throws(() => encodeFrame(new Uint8Array(0)), NetError);
});
