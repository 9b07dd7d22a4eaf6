import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { before, describe, test } from "node:test";
import fc from "fast-check";
import {
  CoseError,
  coseDecodeSign1,
  coseEncodeSign1,
  coseSign1,
  coseVerifySign1,
} from "../../src/crypto/cose.ts";
import { type Identity, makeP256KeyPem, makeServiceCa } from "./fixtures.ts";

const ES384 = -35;
const ES256 = -7;
const hdr = (...entries: [number | string, unknown][]) => new Map<number | string, unknown>(entries);
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const payload = new TextEncoder().encode("Coco says hello");

// RFC 9052 appendix C.2.1: a COSE_Sign1 (ES256, kid "11", unprotected) and the public key of "11".
const RFC_SIGN1 =
  bytes(`d28443a10126a10442313154546869732069732074686520636f6e74656e742e58408eb33e4ca31d1c465ab05aac34
  cc6b23d58fef5c083106c4d25a91aef0b0117e2af9a291aa32e14ab834dc56ed2a223444547e01f11d3b0916e5a4c345cacb36`);
const RFC_KEY_PEM = createPublicKey({
  key: {
    kty: "EC",
    crv: "P-256",
    x: "usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8",
    y: "IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX4",
  },
  format: "jwk",
})
  .export({ type: "spki", format: "pem" })
  .toString();

let service: Identity;
let other: Identity;

before(async () => {
  service = await makeServiceCa("CN=COSE test service");
  other = await makeServiceCa("CN=Another service");
});

/** Re-assembles a message with one part replaced, for malformed-input tests. */
function withParts(
  message: Uint8Array,
  change: Partial<{
    protectedBytes: Uint8Array;
    unprotectedHeader: Map<number | string, unknown>;
    signature: Uint8Array;
  }>,
): Uint8Array {
  const d = coseDecodeSign1(message);
  return coseEncodeSign1({
    protectedBytes: change.protectedBytes ?? d.protectedBytes,
    unprotectedHeader: change.unprotectedHeader ?? d.unprotectedHeader,
    payload: d.payload,
    signature: change.signature ?? d.signature,
  });
}

describe("COSE_Sign1", () => {
  test("verifies the RFC 9052 C.2.1 example and rejects it when altered", () => {
    assert.equal(coseVerifySign1(RFC_SIGN1, RFC_KEY_PEM), true);
    const d = coseDecodeSign1(RFC_SIGN1);
    assert.deepEqual(d.protectedHeader, hdr([1, ES256]));
    assert.deepEqual(Buffer.from(d.unprotectedHeader.get(4) as Uint8Array).toString(), "11");
    assert.equal(Buffer.from(d.payload!).toString(), "This is the content.");
    const altered = Uint8Array.from(RFC_SIGN1);
    altered[20] = altered[20]! ^ 1; // inside the payload
    assert.equal(coseVerifySign1(altered, RFC_KEY_PEM), false);
  });

  test("ES384 with an embedded payload: signs the RFC 9052 Sig_structure", () => {
    const kid = new Uint8Array([0xab, 0xcd]);
    const message = coseSign1({
      protectedHeader: hdr([1, ES384], [4, kid], ["app.label", "x"]),
      unprotectedHeader: hdr([33, 7]),
      payload,
      privateKeyPem: service.keyPem,
    });
    assert.equal(message[0], 0xd2, "tag 18 first");
    const d = coseDecodeSign1(message);
    assert.equal(d.protectedHeader.get(1), ES384);
    assert.deepEqual(new Uint8Array(d.protectedHeader.get(4) as Uint8Array), kid);
    assert.equal(d.protectedHeader.get("app.label"), "x");
    assert.equal(d.unprotectedHeader.get(33), 7);
    assert.deepEqual(new Uint8Array(d.payload!), payload);
    assert.equal(d.signature.length, 96, "raw r||s for P-384");
    // ToBeSigned = ["Signature1", protected, h'', payload], built by hand here.
    const protectedHead = Uint8Array.from(
      d.protectedBytes.length < 24 ? [0x40 + d.protectedBytes.length] : [0x58, d.protectedBytes.length],
    );
    const tbs = Buffer.concat([
      bytes("84 6a"),
      Buffer.from("Signature1"),
      protectedHead,
      d.protectedBytes,
      bytes("40 4f"),
      payload,
    ]);
    assert.equal(
      verify("sha384", tbs, { key: service.certPem, dsaEncoding: "ieee-p1363" }, d.signature),
      true,
    );
    assert.equal(coseVerifySign1(message, service.certPem), true);
    assert.equal(
      coseVerifySign1(
        message,
        createPublicKey(service.certPem).export({ type: "spki", format: "pem" }).toString(),
      ),
      true,
    );
    assert.equal(coseVerifySign1(message, other.certPem), false);
  });

  test("detached payload: nil in the message, supplied to verify", () => {
    const message = coseSign1({
      protectedHeader: hdr([1, ES384]),
      payload: null,
      detachedPayload: payload,
      privateKeyPem: service.keyPem,
    });
    assert.equal(coseDecodeSign1(message).payload, null);
    assert.equal(coseVerifySign1(message, service.certPem, payload), true);
    assert.equal(coseVerifySign1(message, service.certPem, Buffer.from("Coco says hellO")), false);
    assert.throws(() => coseVerifySign1(message, service.certPem), /detached but none was given/);
    assert.throws(
      () => coseSign1({ protectedHeader: hdr([1, ES384]), payload: null, privateKeyPem: service.keyPem }),
      CoseError,
    );
  });

  test("ES256 with a P-256 key; the alg must match the key's curve", async () => {
    const p256 = await makeP256KeyPem();
    const message = coseSign1({ protectedHeader: hdr([1, ES256]), payload, privateKeyPem: p256.keyPem });
    assert.equal(coseDecodeSign1(message).signature.length, 64);
    assert.equal(coseVerifySign1(message, p256.publicPem), true);
    assert.equal(coseVerifySign1(message, service.certPem), false);
    assert.throws(
      () => coseSign1({ protectedHeader: hdr([1, ES384]), payload, privateKeyPem: p256.keyPem }),
      /ES384 needs an EC key on secp384r1/,
    );
    assert.throws(
      () => coseSign1({ protectedHeader: hdr([1, -8]), payload, privateKeyPem: p256.keyPem }),
      /unsupported alg -8/,
    );
    assert.throws(
      () => coseSign1({ protectedHeader: hdr([4, "k"]), payload, privateKeyPem: p256.keyPem }),
      /must carry alg/,
    );
    assert.throws(
      () => coseSign1({ protectedHeader: hdr([1, ES256]), payload, privateKeyPem: "nope" }),
      /not a PEM private key/,
    );
  });

  test("any changed signature, header or payload byte fails or is refused", () => {
    const message = coseSign1({
      protectedHeader: hdr([1, ES384], [4, new Uint8Array(8)]),
      payload,
      privateKeyPem: service.keyPem,
    });
    for (let i = 0; i < message.length; i++) {
      const altered = Uint8Array.from(message);
      altered[i] = altered[i]! ^ 0x01;
      let valid: boolean;
      try {
        valid = coseVerifySign1(altered, service.certPem);
      } catch (err) {
        assert.ok(err instanceof CoseError, `byte ${i}: ${err}`);
        continue;
      }
      assert.equal(valid, false, `flipping byte ${i} still verified`);
    }
  });

  test("refuses malformed and non-strict CBOR with CoseError", () => {
    const good = coseSign1({ protectedHeader: hdr([1, ES384]), payload, privateKeyPem: service.keyPem });
    const d = coseDecodeSign1(good);
    const cases: [string, Uint8Array, RegExp][] = [
      ["untagged", good.subarray(1), /tagged 18/],
      ["wrong tag", Uint8Array.from([0xd1, ...good.subarray(1)]), /unexpected tag 17/],
      ["trailing byte", Uint8Array.from([...good, 0]), /trailing bytes/],
      ["truncated", good.subarray(0, good.length - 1), /truncated/],
      ["three items", bytes("d2 83 40 a0 f6"), /array of 4 items/],
      ["indefinite array", bytes("d2 9f 40 a0 f6 40 ff"), /indefinite-length/],
      ["non-shortest length", bytes("d2 84 5800 a0 f6 40"), /non-shortest/],
      ["protected not bstr", bytes("d2 84 a0 a0 f6 40"), /protected header must be a bstr/],
      ["payload is text", bytes("d2 84 40 a0 61 78 40"), /payload must be a bstr or nil/],
      ["encoded empty protected map", bytes("d2 84 41 a0 a0 f6 40"), /zero-length byte string/],
      ["duplicate protected key", bytes("d2 84 45 a2 01 26 01 26 a0 f6 40"), /duplicate map key/],
      [
        "label in both headers",
        bytes("d2 84 43 a1 01 26 a1 01 26 f6 40"),
        /both the protected and unprotected/,
      ],
      ["alg unprotected", bytes("d2 84 40 a1 01 26 f6 40"), /alg \(label 1\) must be protected/],
      ["nested tag", bytes("d2 84 40 a1 04 c1 00 f6 40"), /unexpected tag 1/],
      ["bad utf-8 label", bytes("d2 84 40 a1 61 ff 00 f6 40"), /UTF-8/],
      ["crit names absent label", bytes("d2 84 46 a2 01 26 02 81 04 a0 f6 40"), /crit names label 4/],
      ["bstr label", bytes("d2 84 40 a1 41 00 00 f6 40"), /neither an integer nor text/],
    ];
    for (const [name, input, message] of cases) {
      assert.throws(
        () => coseDecodeSign1(input),
        (err: unknown) => {
          assert.ok(err instanceof CoseError, `${name}: not a CoseError: ${err}`);
          assert.match(err.message, message, name);
          return true;
        },
      );
    }
    // A signature of the wrong length is a failed verification, not a crash.
    assert.equal(
      coseVerifySign1(withParts(good, { signature: d.signature.subarray(1) }), service.certPem),
      false,
    );
    assert.throws(() => coseVerifySign1(good, "not a key"), /not a PEM public key or certificate/);
  });

  test("arbitrary bytes never escape as anything but CoseError", () => {
    const good = coseSign1({ protectedHeader: hdr([1, ES384]), payload, privateKeyPem: service.keyPem });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const b = Uint8Array.from(good);
            b[at] = b[at]! ^ x;
            return b;
          }),
        ),
        (input) => {
          try {
            coseVerifySign1(input, service.certPem, payload);
          } catch (err) {
            assert.ok(err instanceof CoseError, String(err));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
