import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { decodeEnvelope, encodeEnvelope } from "../../src/net/envelope.ts";
import { NetError } from "../../src/net/errors.ts";

const plain = new Packr({ useRecords: false });

test("Raft-shaped messages round-trip, binaries as plain Uint8Array", () => {
  const body = {
    type: "append_entries",
    from: "a".repeat(64),
    view: 3,
    prevSeqno: 2 ** 40,
    entries: [{ seqno: 5, view: 3, data: new Uint8Array([1, 2, 3]) }],
    ok: true,
    nothing: null,
    big: 12345678901234567n,
    ratio: 0.25,
  };
  const got = decodeEnvelope(encodeEnvelope({ kind: "msg", body }));
  assert.deepEqual(got, { kind: "msg", body });
  const data = (got.body as typeof body).entries[0]?.data;
  assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);
});

test("any JSON-like body round-trips inside every envelope kind", () => {
  fc.assert(
    // "__proto__" keys are renamed by the decoder on purpose; see the next test.
    fc.property(
      fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"')),
      fc.nat(),
      (body, id) => {
        // msgpack has no -0; JSON values can contain it.
        const clean = JSON.parse(JSON.stringify(body)) as unknown;
        assert.deepEqual(decodeEnvelope(encodeEnvelope({ kind: "msg", body: clean })), {
          kind: "msg",
          body: clean,
        });
        assert.deepEqual(decodeEnvelope(encodeEnvelope({ kind: "req", id, body: clean })), {
          kind: "req",
          id,
          body: clean,
        });
        assert.deepEqual(decodeEnvelope(encodeEnvelope({ kind: "res", id, error: "nope" })), {
          kind: "res",
          id,
          error: "nope",
        });
      },
    ),
    { numRuns: 200 },
  );
});

test("a __proto__ key in a frame cannot change an object's prototype", () => {
  const hostile = new Uint8Array(
    Buffer.concat([
      Buffer.from([0x82]), // map of 2
      plain.pack("kind"),
      plain.pack("msg"),
      plain.pack("body"),
      Buffer.from([0x81]),
      plain.pack("__proto__"),
      plain.pack({ polluted: true }),
    ]),
  );
  const got = decodeEnvelope(hostile);
  assert.equal(got.kind, "msg");
  const body = (got as { body: unknown }).body as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(body), Object.prototype);
  assert.equal(body.polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("malformed payloads are NetError('frame') with a reason", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0xc1]), /not an envelope object/],
    [new Uint8Array([0x92, 0x01]), /not valid msgpack/],
    [plain.pack([1, 2]), /not an envelope object/],
    [plain.pack("msg"), /not an envelope object/],
    [plain.pack({ kind: "howdy", body: 1 }), /unknown kind "howdy"/],
    [plain.pack({ kind: "hello" }), /hello frame has no valid version/],
    [plain.pack({ kind: "req", body: 1 }), /req frame has no valid id/],
    [plain.pack({ kind: "res", id: -1 }), /res frame has no valid id/],
    [plain.pack({ kind: "res", id: 1.5 }), /res frame has no valid id/],
    [plain.pack({ kind: "res", id: 1, error: 7 }), /non-string error/],
    [new Uint8Array([...plain.pack({ kind: "msg" }), 0x00]), /not valid msgpack/],
  ];
  for (const [bytes, reason] of cases) {
    assert.throws(
      () => decodeEnvelope(bytes),
      (err: unknown) => err instanceof NetError && err.code === "frame" && reason.test(err.message),
      `expected ${reason} for ${Buffer.from(bytes).toString("hex")}`,
    );
  }
});

test("random bytes never escape as anything but NetError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      try {
        decodeEnvelope(bytes);
      } catch (err) {
        assert.ok(err instanceof NetError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});

test("an unencodable message is NetError('encode')", () => {
  assert.throws(
    () => encodeEnvelope({ kind: "msg", body: 2n ** 70n }),
    (err: unknown) => err instanceof NetError && err.code === "encode",
  );
});
