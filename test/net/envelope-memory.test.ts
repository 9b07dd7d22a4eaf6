/**
 * Decoded binaries and the memory they live in: an AppendEntries is decoded with its entries as
 * views into one copy of the message, never into the socket chunk it arrived in (which other
 * frames share, and which a log entry kept for hours would otherwise pin).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { decodeEnvelope, type Envelope, encodeEnvelope } from "../../src/net/envelope.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";

const entries = (count: number, size: number, seed = 1) =>
  Array.from({ length: count }, (_, i) => ({
    seqno: i + 1,
    view: 2,
    isSignature: i === count - 1,
    data: new Uint8Array(size).map((_, j) => (seed + i * 31 + j) & 0xff),
  }));

const appendEntries = (list: ReturnType<typeof entries>) => ({
  type: "append_entries",
  from: "a".repeat(64),
  to: "b".repeat(64),
  view: 2,
  prevSeqno: 0,
  prevView: 0,
  commitSeqno: 0,
  entries: list,
});

/** Every frame of `messages` in one buffer, as one socket read might bring them. */
function oneChunk(messages: Envelope[]): Uint8Array {
  return new Uint8Array(Buffer.concat(messages.map((m) => encodeFrame(encodeEnvelope(m)))));
}

test("entries of a message share one copy of it, not the chunk it arrived in", () => {
  const big = appendEntries(entries(20, 300));
  const small = { type: "blob", data: new Uint8Array([1, 2, 3]) };
  const chunk = oneChunk([
    { kind: "msg", body: small },
    { kind: "msg", body: big },
    { kind: "msg", body: small },
  ]);
  const payloads = new FrameDecoder(1 << 20).push(chunk);
  assert.equal(payloads.length, 3);
  const [first, second, third] = payloads.map(decodeEnvelope) as Array<{ kind: "msg"; body: unknown }>;
  const got = second!.body as typeof big;
  assert.deepEqual(got, big);
  const buffers = new Set(got.entries.map((e) => e.data.buffer));
  assert.equal(buffers.size, 1, "one copy for the whole message");
  const [shared] = buffers;
  assert.notEqual(shared, chunk.buffer);
  assert.ok(shared!.byteLength <= payloads[1]!.length, "the copy is the message, no more");
  for (const small of [first!, third!]) {
    const data = (small.body as { data: Uint8Array }).data;
    assert.notEqual(data.buffer, chunk.buffer);
    assert.equal(data.buffer.byteLength, 3);
  }
  // Whatever the socket layer does with its chunk afterwards changes nothing decoded.
  chunk.fill(0);
  assert.deepEqual(got, big);
  assert.deepEqual((first!.body as { data: Uint8Array }).data, new Uint8Array([1, 2, 3]));
});

test("messages round-trip through frames cut anywhere, and never alias the input", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 400 })), {
        minLength: 1,
        maxLength: 5,
      }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (shapes, cuts) => {
        const sent: Envelope[] = shapes.map(([count, size], i) => ({
          kind: "msg",
          body: appendEntries(entries(count, size, i)),
        }));
        const stream = oneChunk(sent);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const decoder = new FrameDecoder(1 << 22);
        const got: Envelope[] = [];
        let last = 0;
        for (const p of [...points, stream.length]) {
          for (const payload of decoder.push(stream.subarray(last, p))) got.push(decodeEnvelope(payload));
          last = p;
        }
        stream.fill(0xee);
        assert.deepEqual(got, sent);
      },
    ),
    { numRuns: 150 },
  );
});

test("a payload that is a buffer of its own is decoded in place, still as plain Uint8Arrays", () => {
  const body = appendEntries(entries(3, 50));
  const payload = Uint8Array.prototype.slice.call(encodeEnvelope({ kind: "msg", body }));
  const got = decodeEnvelope(payload) as { kind: "msg"; body: typeof body };
  assert.deepEqual(got.body, body);
  for (const e of got.body.entries) {
    assert.equal(Object.getPrototypeOf(e.data), Uint8Array.prototype);
    assert.equal(e.data.buffer, payload.buffer);
  }
});
