import "reflect-metadata"; // @peculiar/x509 needs the Reflect polyfill before it loads
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { before, describe, test } from "node:test";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import {
  certFingerprint,
  coseCborDecode,
  coseCborEncode,
  coseDecodeSign1,
  coseEncodeSign1,
  coseSign1,
  createIdentityCertificate,
} from "../../src/crypto/index.ts";
import {
  GOV_MESSAGE_TYPES,
  GOV_TYPES_WITH_PROPOSAL_ID,
  type GovMessageType,
  GovRequestError,
  type GovRequestErrorCode,
  ReplayGuard,
  signGovRequest,
  type VerifyGovRequestOptions,
  verifyGovRequest,
} from "../../src/gov/index.ts";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

interface Member {
  id: string;
  certPem: string;
  keyPem: string;
}

const NOW = 1_750_000_000;
const PROPOSAL_ID = "a".repeat(64);
const text = new TextEncoder();

async function p384Member(name: string, serial: number): Promise<Member> {
  const { certPem, privateKeyPem } = await createIdentityCertificate({
    name,
    now: new Date("2025-01-01T00:00:00Z"),
    serial: Uint8Array.of(serial),
  });
  return { id: certFingerprint(certPem), certPem, keyPem: privateKeyPem };
}

async function p256Member(name: string): Promise<Member> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0102",
    name,
    keys,
    notBefore: new Date("2025-01-01T00:00:00Z"),
    notAfter: new Date("2030-01-01T00:00:00Z"),
    signingAlgorithm: alg,
  });
  const keyPem = x509.PemConverter.encode(
    await webcrypto.subtle.exportKey("pkcs8", keys.privateKey),
    "PRIVATE KEY",
  );
  const certPem = cert.toString("pem");
  return { id: certFingerprint(certPem), certPem, keyPem };
}

let alice: Member;
let bob: Member;
let carol: Member; // P-256

before(async () => {
  alice = await p384Member("CN=alice", 1);
  bob = await p384Member("CN=bob", 2);
  carol = await p256Member("CN=carol");
});

function lookup(kid: string): string | undefined {
  return [alice, bob, carol].find((m) => m.id === kid)?.certPem;
}

function sign(
  member: Member,
  type: GovMessageType,
  extra: { proposalId?: string; createdAt?: number; payload?: Uint8Array } = {},
): Uint8Array {
  const proposalId =
    extra.proposalId ?? (GOV_TYPES_WITH_PROPOSAL_ID.includes(type) ? PROPOSAL_ID : undefined);
  return signGovRequest({
    keyPem: member.keyPem,
    certPem: member.certPem,
    type,
    createdAt: extra.createdAt ?? NOW,
    payload: extra.payload ?? text.encode(`{"type":"${type}"}`),
    ...(proposalId === undefined ? {} : { proposalId }),
  });
}

function opts(
  expectedType: GovMessageType,
  more: Partial<VerifyGovRequestOptions> = {},
): VerifyGovRequestOptions {
  return { expectedType, lookupMemberCert: lookup, now: NOW, ...more };
}

function refusedWith(code: GovRequestErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GovRequestError, `expected GovRequestError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

/** A COSE_Sign1 with a hand-made protected header, signed by `key`. */
function signRaw(
  header: [number | string, unknown][],
  keyPem: string,
  payload: Uint8Array | null = text.encode("{}"),
) {
  return coseSign1({
    protectedHeader: new Map(header),
    payload,
    ...(payload === null ? { detachedPayload: text.encode("{}") } : {}),
    privateKeyPem: keyPem,
  });
}

function kidBytes(member: Member): Uint8Array {
  return text.encode(member.id);
}

describe("signGovRequest / verifyGovRequest round trip", () => {
  for (const type of GOV_MESSAGE_TYPES) {
    test(`${type}`, () => {
      const payload = type === "withdrawal" ? new Uint8Array(0) : text.encode(`{"kind":"${type}"}`);
      const bytes = sign(alice, type, { payload });
      const got = verifyGovRequest(bytes, opts(type));
      assert.equal(got.memberId, alice.id);
      assert.equal(got.type, type);
      assert.equal(got.createdAt, NOW);
      assert.deepEqual(got.payload, payload);
      assert.equal(got.proposalId, GOV_TYPES_WITH_PROPOSAL_ID.includes(type) ? PROPOSAL_ID : undefined);
      assert.match(got.coseDigest, /^[0-9a-f]{64}$/);
      assert.match(got.replayDigest, /^[0-9a-f]{64}$/);
      assert.notEqual(got.coseDigest, got.replayDigest);
    });
  }

  test("a P-256 member signs with ES256 and verifies", () => {
    const bytes = sign(carol, "proposal");
    const { protectedHeader } = coseDecodeSign1(bytes);
    assert.equal(protectedHeader.get(1), -7);
    assert.equal(verifyGovRequest(bytes, opts("proposal")).memberId, carol.id);
  });

  test("the proposal id is carried on any type when given", () => {
    const bytes = sign(alice, "proposal", { proposalId: "p1" });
    assert.equal(verifyGovRequest(bytes, opts("proposal")).proposalId, "p1");
  });
});

describe("wire encoding (CCF's)", () => {
  test("tag 18, empty unprotected header, protected labels in deterministic order, kid as bstr of hex", () => {
    const bytes = sign(alice, "ballot", { payload: text.encode("ballot") });
    assert.equal(bytes[0], 0xd2, "tagged COSE_Sign1");
    const parts = coseDecodeSign1(bytes);
    assert.equal(parts.unprotectedHeader.size, 0);
    assert.deepEqual(
      [...parts.protectedHeader.keys()],
      [1, 4, "ccf.gov.msg.type", "ccf.gov.msg.created_at", "ccf.gov.msg.proposal_id"],
    );
    const kid = parts.protectedHeader.get(4);
    assert.ok(kid instanceof Uint8Array, "kid is a byte string");
    assert.equal(Buffer.from(kid).toString("latin1"), alice.id);
    assert.equal(parts.protectedHeader.get(1), -35);
    assert.equal(parts.protectedHeader.get("ccf.gov.msg.type"), "ballot");
    assert.equal(parts.protectedHeader.get("ccf.gov.msg.created_at"), NOW);
    assert.equal(parts.protectedHeader.get("ccf.gov.msg.proposal_id"), PROPOSAL_ID);
    // The encoded bytes, label by label: an integer created_at (0x1a: uint32), not text or a float.
    const hex = Buffer.from(parts.protectedBytes).toString("hex");
    assert.ok(hex.startsWith("a5013822045840"), hex.slice(0, 16)); // map(5), 1: -35, 4: bstr(64)
    assert.ok(hex.includes(`${Buffer.from("ccf.gov.msg.created_at").toString("hex")}1a${NOW.toString(16)}`));
  });

  test("an untagged COSE_Sign1 is accepted too", () => {
    const bytes = sign(alice, "ack");
    assert.equal(verifyGovRequest(bytes.subarray(1), opts("ack")).memberId, alice.id);
  });

  test("kid as a text string is accepted", () => {
    const bytes = signRaw(
      [
        [1, -35],
        [4, alice.id],
        ["ccf.gov.msg.type", "proposal"],
        ["ccf.gov.msg.created_at", NOW],
      ],
      alice.keyPem,
    );
    assert.equal(verifyGovRequest(bytes, opts("proposal")).memberId, alice.id);
  });
});

describe("refusals", () => {
  test("signed with another member's key under this member's kid: BadSignature", () => {
    const forged = signRaw(
      [
        [1, -35],
        [4, kidBytes(alice)],
        ["ccf.gov.msg.type", "proposal"],
        ["ccf.gov.msg.created_at", NOW],
      ],
      bob.keyPem,
    );
    assert.throws(
      () => verifyGovRequest(forged, opts("proposal")),
      refusedWith("BadSignature", /alice|[0-9a-f]{64}/),
    );
  });

  test("an altered payload: BadSignature", () => {
    const parts = coseDecodeSign1(sign(alice, "proposal", { payload: text.encode('{"actions":[]}') }));
    const altered = coseEncodeSign1({ ...parts, payload: text.encode('{"actions":[1]}') });
    assert.throws(() => verifyGovRequest(altered, opts("proposal")), refusedWith("BadSignature"));
  });

  test("a P-256 signature under a P-384 member's kid: BadSignature", () => {
    const forged = signRaw(
      [
        [1, -7],
        [4, kidBytes(alice)],
        ["ccf.gov.msg.type", "proposal"],
        ["ccf.gov.msg.created_at", NOW],
      ],
      carol.keyPem,
    );
    assert.throws(() => verifyGovRequest(forged, opts("proposal")), refusedWith("BadSignature"));
  });

  test("unknown kid: UnknownKid", () => {
    const bytes = sign(alice, "proposal");
    assert.throws(
      () => verifyGovRequest(bytes, opts("proposal", { lookupMemberCert: () => undefined })),
      refusedWith("UnknownKid", new RegExp(alice.id)),
    );
  });

  test("a lookup that returns some other member's certificate: UnknownKid, not a verification", () => {
    const bytes = sign(alice, "proposal");
    assert.throws(
      () => verifyGovRequest(bytes, opts("proposal", { lookupMemberCert: () => bob.certPem })),
      refusedWith("UnknownKid", /different fingerprint/),
    );
  });

  test("wrong message type: WrongMessageType", () => {
    const bytes = sign(alice, "proposal");
    assert.throws(
      () => verifyGovRequest(bytes, opts("ballot")),
      refusedWith("WrongMessageType", /"proposal"/),
    );
  });

  test("proposal id mismatch: ProposalIdMismatch", () => {
    const bytes = sign(alice, "ballot", { proposalId: "p1" });
    assert.throws(
      () => verifyGovRequest(bytes, opts("ballot", { expectedProposalId: "p2" })),
      refusedWith("ProposalIdMismatch", /"p1".*"p2"/),
    );
    assert.equal(verifyGovRequest(bytes, opts("ballot", { expectedProposalId: "p1" })).proposalId, "p1");
  });

  test("signed by someone other than the member in the URL: MemberMismatch", () => {
    const bytes = sign(alice, "state_digest");
    assert.throws(
      () => verifyGovRequest(bytes, opts("state_digest", { expectedMemberId: bob.id })),
      refusedWith("MemberMismatch"),
    );
  });

  test("created_at too old: Stale; too far ahead: FutureCreatedAt; the edges are accepted", () => {
    const limits = { maxPastSeconds: 300, maxFutureSeconds: 20 };
    const at = (createdAt: number) => sign(alice, "proposal", { createdAt });
    assert.throws(() => verifyGovRequest(at(NOW - 301), opts("proposal", limits)), refusedWith("Stale"));
    assert.throws(
      () => verifyGovRequest(at(NOW + 21), opts("proposal", limits)),
      refusedWith("FutureCreatedAt"),
    );
    verifyGovRequest(at(NOW - 300), opts("proposal", limits));
    verifyGovRequest(at(NOW + 20), opts("proposal", limits));
    // By default: 10 minutes back, 30 seconds ahead.
    assert.throws(() => verifyGovRequest(at(NOW - 601), opts("proposal")), refusedWith("Stale"));
    assert.throws(() => verifyGovRequest(at(NOW + 31), opts("proposal")), refusedWith("FutureCreatedAt"));
    verifyGovRequest(at(NOW + 30), opts("proposal"));
  });

  test("the member's certificate must be valid now and at created_at", async () => {
    // Valid for one day from 2025-01-01.
    const { certPem, privateKeyPem } = await createIdentityCertificate({
      name: "dana",
      now: new Date("2025-01-01T00:00:00Z"),
      serial: Uint8Array.of(9),
      validityDays: 1,
    });
    const dana: Member = { id: certFingerprint(certPem), certPem, keyPem: privateKeyPem };
    const start = Date.parse("2025-01-01T00:00:00Z") / 1000;
    const check = (createdAt: number, now: number) =>
      verifyGovRequest(sign(dana, "proposal", { createdAt }), {
        expectedType: "proposal",
        lookupMemberCert: (kid) => (kid === dana.id ? dana.certPem : undefined),
        now,
      });
    check(start + 60, start + 60);
    assert.throws(
      () => check(start + 2 * 86_400, start + 2 * 86_400),
      refusedWith("CertificateExpired", /certificate expired\/not yet valid/),
    );
    // Signed while valid, received after expiry: refused.
    assert.throws(() => check(start + 86_400 - 10, start + 86_400 + 5), refusedWith("CertificateExpired"));
    assert.throws(() => check(start - 100, start - 100), refusedWith("CertificateNotYetValid"));
    // Dated before the certificate existed, received while valid: refused.
    assert.throws(() => check(start - 5, start + 10), refusedWith("CertificateNotYetValid"));
  });
});

describe("replay (through the guard)", () => {
  test("the same bytes twice: Replay", () => {
    const guard = new ReplayGuard();
    const bytes = sign(alice, "proposal");
    verifyGovRequest(bytes, opts("proposal", { replayGuard: guard }));
    assert.throws(
      () => verifyGovRequest(bytes, opts("proposal", { replayGuard: guard })),
      refusedWith("Replay"),
    );
    // The untagged form of the same request is the same request.
    assert.throws(
      () => verifyGovRequest(bytes.subarray(1), opts("proposal", { replayGuard: guard })),
      refusedWith("Replay"),
    );
  });

  test("a malleated ECDSA signature (s -> n - s) still verifies but is recognised as a replay", () => {
    const n = BigInt(
      "0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    );
    const guard = new ReplayGuard();
    const bytes = sign(alice, "proposal");
    const first = verifyGovRequest(bytes, opts("proposal", { replayGuard: guard }));
    const parts = coseDecodeSign1(bytes);
    const s = BigInt(`0x${Buffer.from(parts.signature.subarray(48)).toString("hex")}`);
    const malleated = new Uint8Array(96);
    malleated.set(parts.signature.subarray(0, 48), 0);
    malleated.set(Buffer.from((n - s).toString(16).padStart(96, "0"), "hex"), 48);
    const twin = coseEncodeSign1({ ...parts, signature: malleated });
    const second = verifyGovRequest(twin, opts("proposal")); // a valid signature on its own
    assert.notEqual(second.coseDigest, first.coseDigest);
    assert.equal(second.replayDigest, first.replayDigest);
    assert.throws(
      () => verifyGovRequest(twin, opts("proposal", { replayGuard: guard })),
      refusedWith("Replay"),
    );
  });

  test("a refused request is not recorded: fixing the endpoint's expectation still accepts it once", () => {
    const guard = new ReplayGuard();
    const bytes = sign(alice, "ballot");
    assert.throws(
      () => verifyGovRequest(bytes, opts("proposal", { replayGuard: guard })),
      refusedWith("WrongMessageType"),
    );
    assert.equal(guard.size, 0);
    verifyGovRequest(bytes, opts("ballot", { replayGuard: guard }));
    assert.equal(guard.size, 1);
  });

  test("two distinct requests in the same second are both accepted", () => {
    const guard = new ReplayGuard();
    verifyGovRequest(
      sign(alice, "proposal", { payload: text.encode("1") }),
      opts("proposal", { replayGuard: guard }),
    );
    verifyGovRequest(
      sign(alice, "proposal", { payload: text.encode("2") }),
      opts("proposal", { replayGuard: guard }),
    );
    assert.equal(guard.size, 2);
  });
});

describe("malformed input: InvalidCose", () => {
  const header = (drop: number | string | undefined, extra: [number | string, unknown][] = []) =>
    (
      [
        [1, -35],
        [4, kidBytes(alice)],
        ["ccf.gov.msg.type", "proposal"],
        ["ccf.gov.msg.created_at", NOW],
        ...extra,
      ] as [number | string, unknown][]
    ).filter(([label]) => label !== drop);

  const cases: [string, () => Uint8Array, RegExp][] = [
    ["empty body", () => new Uint8Array(0), /non-empty/],
    ["not CBOR at all", () => text.encode('{"actions":[]}'), /COSE_Sign1/],
    ["CBOR but not COSE (a map)", () => coseCborEncode(new Map([[1, 2]])), /COSE_Sign1/],
    ["a 4-array of the wrong things", () => coseCborEncode([1, 2, 3, 4]), /protected header/],
    ["trailing bytes", () => Uint8Array.from([...sign(alice, "proposal"), 0]), /trailing/],
    ["no kid", () => signRaw(header(4), alice.keyPem), /kid/],
    [
      "kid that is not a member id",
      () => signRaw([...header(4), [4, text.encode("alice")]], alice.keyPem),
      /kid/,
    ],
    ["no message type", () => signRaw(header("ccf.gov.msg.type"), alice.keyPem), /ccf\.gov\.msg\.type/],
    ["no created_at", () => signRaw(header("ccf.gov.msg.created_at"), alice.keyPem), /created_at/],
    [
      "created_at as text",
      () =>
        signRaw(
          [...header("ccf.gov.msg.created_at"), ["ccf.gov.msg.created_at", "2025-01-01"]],
          alice.keyPem,
        ),
      /created_at/,
    ],
    [
      "negative created_at",
      () => signRaw([...header("ccf.gov.msg.created_at"), ["ccf.gov.msg.created_at", -1]], alice.keyPem),
      /created_at/,
    ],
    [
      "a ballot without a proposal id",
      () => signRaw([...header("ccf.gov.msg.type"), ["ccf.gov.msg.type", "ballot"]], alice.keyPem),
      /proposal_id/,
    ],
    [
      "a non-text proposal id",
      () => signRaw(header(undefined, [["ccf.gov.msg.proposal_id", 7]]), alice.keyPem),
      /proposal_id/,
    ],
    ["detached payload", () => signRaw(header(undefined), alice.keyPem, null), /detached/],
    [
      "alg not ECDSA",
      () => {
        const good = coseDecodeSign1(sign(alice, "proposal"));
        const protectedBytes = coseCborEncode(new Map([...good.protectedHeader, [1, -37]]));
        return coseEncodeSign1({ ...good, protectedBytes });
      },
      /alg/,
    ],
    [
      "governance headers in the unprotected header only",
      () => {
        const good = coseDecodeSign1(signRaw(header("ccf.gov.msg.type"), alice.keyPem));
        return coseEncodeSign1({ ...good, unprotectedHeader: new Map([["ccf.gov.msg.type", "proposal"]]) });
      },
      /ccf\.gov\.msg\.type/,
    ],
  ];
  for (const [name, make, pattern] of cases) {
    test(name, () => {
      assert.throws(() => verifyGovRequest(make(), opts("proposal")), refusedWith("InvalidCose", pattern));
    });
  }

  test("arbitrary bytes are refused with a GovRequestError, never anything else", () => {
    const valid = sign(alice, "proposal");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          // Near misses: a valid request with one byte changed or cut short.
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, delta]) => {
            const copy = Uint8Array.from(valid);
            copy[i] = ((copy[i] ?? 0) + delta) & 0xff;
            return copy;
          }),
          fc.nat(valid.length - 1).map((n) => valid.subarray(0, n)),
        ),
        (bytes) => {
          try {
            verifyGovRequest(bytes, opts("proposal"));
          } catch (err) {
            assert.ok(err instanceof GovRequestError, String(err));
            return;
          }
          assert.fail("a damaged request was accepted");
        },
      ),
      { numRuns: 300 },
    );
  });

  test("the decoder's own CBOR checks hold for the protected header (duplicate labels refused)", () => {
    // map(2) {1: -35, 1: -35}: a duplicate label must not let two readers see different headers.
    const protectedBytes = Uint8Array.from([0xa2, 0x01, 0x38, 0x22, 0x01, 0x38, 0x22]);
    assert.throws(() => coseCborDecode(protectedBytes, "header"));
    const good = coseDecodeSign1(sign(alice, "proposal"));
    assert.throws(
      () => verifyGovRequest(coseEncodeSign1({ ...good, protectedBytes }), opts("proposal")),
      refusedWith("InvalidCose", /duplicate/),
    );
  });
});

describe("signGovRequest input checks", () => {
  test("a ballot or withdrawal must name its proposal", () => {
    for (const type of ["ballot", "withdrawal"] as const) {
      assert.throws(
        () =>
          signGovRequest({
            keyPem: alice.keyPem,
            certPem: alice.certPem,
            type,
            createdAt: NOW,
            payload: new Uint8Array(),
          }),
        refusedWith("InvalidInput", /proposalId/),
      );
    }
  });

  test("the key must belong to the certificate", () => {
    assert.throws(
      () =>
        signGovRequest({
          keyPem: bob.keyPem,
          certPem: alice.certPem,
          type: "ack",
          createdAt: NOW,
          payload: new Uint8Array(),
        }),
      refusedWith("InvalidInput", /not the private key/),
    );
  });

  test("unknown type and bad created_at are refused", () => {
    const base = { keyPem: alice.keyPem, certPem: alice.certPem, payload: new Uint8Array() };
    assert.throws(
      () => signGovRequest({ ...base, type: "vote" as GovMessageType, createdAt: NOW }),
      refusedWith("InvalidInput", /unknown message type/),
    );
    for (const createdAt of [-1, 1.5, Number.NaN]) {
      assert.throws(
        () => signGovRequest({ ...base, type: "ack", createdAt }),
        refusedWith("InvalidInput", /createdAt/),
      );
    }
  });
});
