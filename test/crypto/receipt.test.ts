import assert from "node:assert/strict";
import { createHash, verify, X509Certificate } from "node:crypto";
import { before, describe, test } from "node:test";
import fc from "fast-check";
import { coseCborDecode, coseDecodeSign1, coseEncodeSign1, coseVerifySign1 } from "../../src/crypto/cose.ts";
import { MerkleTree } from "../../src/crypto/merkle.ts";
import {
  buildCoseReceipt,
  buildJsonReceipt,
  type JsonReceipt,
  leafFromComponents,
  ReceiptError,
  signRootCose,
  signRootNode,
  type VerifyCheck,
  type VerifyResult,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "../../src/crypto/receipt.ts";
import {
  endorse,
  type Identity,
  makeNode,
  makeServiceCa,
  type NodeIdentity,
  VALID_FROM,
  VALID_TO,
} from "./fixtures.ts";

const sha256 = (...parts: (Uint8Array | string)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const VIEW = 2;
const LEAVES = 50;
/** Signature transactions sign the tree of all transactions before them: these tree sizes. */
const SIGNED_SIZES = [7, 20, 33, 50];
const ISSUED_AT = 1_735_689_600;

interface Tx {
  seqno: number;
  writeSetDigest: Uint8Array;
  commitEvidence: string;
  claimsDigest: Uint8Array;
}

const txs: Tx[] = Array.from({ length: LEAVES }, (_, i) => ({
  seqno: i + 1,
  writeSetDigest: sha256(`write set ${i}`),
  commitEvidence: `ce:${VIEW}.${i + 1}:${hex(sha256(`nonce ${i}`))}`,
  claimsDigest: i % 3 === 0 ? new Uint8Array(32) : sha256(`claims ${i}`),
}));

let service: Identity;
let impostorCa: Identity;
let node: NodeIdentity;
let tree: MerkleTree;
const serviceKid = sha256("service kid");
const jsonReceipts: JsonReceipt[] = [];
const coseReceipts: Uint8Array[] = [];
const signedSizeOf: number[] = [];

function leafComponentsOf(tx: Tx) {
  return {
    write_set_digest: hex(tx.writeSetDigest),
    commit_evidence: tx.commitEvidence,
    claims_digest: hex(tx.claimsDigest),
  };
}

before(async () => {
  service = await makeServiceCa("CN=Coco Service");
  impostorCa = await makeServiceCa("CN=Impostor Service");
  node = await makeNode(service, { name: "CN=Coco Node 0" });
  tree = new MerkleTree();
  for (const tx of txs) tree.append(leafFromComponents(tx));
  const signed = new Map<number, { nodeSig: Uint8Array; cose: Uint8Array }>();
  for (const size of SIGNED_SIZES) {
    const root = tree.root(size);
    signed.set(size, {
      nodeSig: signRootNode({ root, nodePrivateKeyPem: node.keyPem }),
      cose: signRootCose({
        root,
        servicePrivateKeyPem: service.keyPem,
        serviceKid,
        txid: `${VIEW}.${size + 1}`,
        issuedAt: ISSUED_AT,
      }),
    });
  }
  txs.forEach((tx, i) => {
    const size = SIGNED_SIZES.find((s) => s > i)!;
    const { nodeSig, cose } = signed.get(size)!;
    const proof = tree.path(i, size);
    signedSizeOf.push(size);
    jsonReceipts.push(
      buildJsonReceipt({
        nodeCertPem: node.certPem,
        nodeId: node.nodeId,
        signature: nodeSig,
        proof,
        leafComponents: leafComponentsOf(tx),
      }),
    );
    coseReceipts.push(buildCoseReceipt({ signedRoot: cose, proof, ...tx }));
  });
});

function assertFails(result: VerifyResult, check: VerifyCheck, what: string, message?: RegExp): void {
  assert.equal(result.ok, false, `${what}: expected failure (${check}) but it verified`);
  if (result.ok) return;
  assert.equal(result.check, check, `${what}: failed ${result.check} (${result.message}), expected ${check}`);
  if (message) assert.match(result.message, message, what);
}

/** A receipt for a middle leaf with a long proof of both lefts and rights. */
const SAMPLE = 27;
const sample = () => structuredClone(jsonReceipts[SAMPLE]!);

describe("receipts end to end", () => {
  test("every transaction's JSON and COSE receipts verify, to the signed root", () => {
    for (let i = 0; i < LEAVES; i++) {
      const expected = { ok: true, root: hex(tree.root(signedSizeOf[i]!)), txid: `${VIEW}.${i + 1}` };
      assert.deepEqual(verifyJsonReceipt(jsonReceipts[i], service.certPem), expected, `JSON receipt ${i}`);
      assert.deepEqual(verifyCoseReceipt(coseReceipts[i]!, service.certPem), expected, `COSE receipt ${i}`);
    }
    // A JSON receipt survives a trip through JSON text, which is how clients get it.
    const text = JSON.stringify(jsonReceipts[SAMPLE]);
    assert.equal(verifyJsonReceipt(JSON.parse(text), service.certPem).ok, true);
  });

  test("JSON receipts have CCF's field names and encodings", () => {
    const r = jsonReceipts[SAMPLE]!;
    assert.deepEqual(Object.keys(r).sort(), [
      "cert",
      "leaf_components",
      "node_id",
      "proof",
      "service_endorsements",
      "signature",
    ]);
    assert.equal(r.node_id, node.nodeId);
    assert.match(r.signature, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(r.service_endorsements, []);
    for (const step of r.proof) assert.match(Object.values(step)[0] as string, /^[0-9a-f]{64}$/);
    assert.ok(r.proof.some((s) => "left" in s) && r.proof.some((s) => "right" in s));
  });

  test("an auditor can check a JSON receipt with plain SHA-256 and ECDSA, as docs/receipts.md says", () => {
    const r = jsonReceipts[SAMPLE]!;
    const lc = r.leaf_components;
    let h = sha256(
      Buffer.from(lc.write_set_digest, "hex"),
      sha256(lc.commit_evidence),
      Buffer.from(lc.claims_digest, "hex"),
    );
    for (const step of r.proof) {
      h =
        "left" in step ? sha256(Buffer.from(step.left, "hex"), h) : sha256(h, Buffer.from(step.right, "hex"));
    }
    assert.equal(hex(h), hex(tree.root(signedSizeOf[SAMPLE]!)));
    assert.equal(verify("sha384", h, r.cert, Buffer.from(r.signature, "base64")), true);
    const cert = new X509Certificate(r.cert);
    assert.equal(hex(sha256(cert.publicKey.export({ type: "spki", format: "der" }))), r.node_id);
    assert.equal(cert.verify(new X509Certificate(service.certPem).publicKey), true);
  });

  test("COSE receipts carry the CCF profile headers and proof layout", () => {
    const message = coseDecodeSign1(coseReceipts[SAMPLE]!);
    const p = message.protectedHeader;
    assert.equal(p.get(1), -35, "alg ES384");
    assert.deepEqual(new Uint8Array(p.get(4) as Uint8Array), new Uint8Array(serviceKid), "kid");
    assert.equal(p.get(395), 2, "vds CCF_LEDGER_SHA256");
    assert.deepEqual(p.get(15), new Map([[6, ISSUED_AT]]), "CWT claims with iat");
    assert.deepEqual(p.get("ccf.v1"), new Map([["txid", `${VIEW}.${signedSizeOf[SAMPLE]! + 1}`]]));
    assert.equal(message.payload, null, "detached payload");
    const vdp = message.unprotectedHeader.get(396) as Map<number, unknown>;
    const proofs = vdp.get(-1) as Uint8Array[];
    assert.equal(proofs.length, 1);
    const proof = coseCborDecode(proofs[0]!, "proof") as Map<number, unknown>;
    assert.deepEqual([...proof.keys()], [1, 2]);
    const [wsd, ce, claims] = proof.get(1) as [Uint8Array, string, Uint8Array];
    assert.equal(hex(wsd), hex(txs[SAMPLE]!.writeSetDigest));
    assert.equal(ce, txs[SAMPLE]!.commitEvidence);
    assert.equal(hex(claims), hex(txs[SAMPLE]!.claimsDigest));
    const path = proof.get(2) as [boolean, Uint8Array][];
    // Independently of Coco's verifier: fold the path as the draft does and check the signature.
    let h = sha256(wsd, sha256(ce), claims);
    for (const [left, sibling] of path) h = left ? sha256(sibling, h) : sha256(h, sibling);
    assert.equal(hex(h), hex(tree.root(signedSizeOf[SAMPLE]!)));
    assert.equal(coseVerifySign1(coseReceipts[SAMPLE]!, service.certPem, h), true);
  });

  test("tampering with any part of a JSON receipt fails the right check", () => {
    const cases: [string, (r: JsonReceipt) => unknown, VerifyCheck][] = [];
    const flipHex = (s: string) => (s[0] === "0" ? "1" : "0") + s.slice(1);
    for (let i = 0; i < sample().proof.length; i++) {
      cases.push([
        `proof[${i}] hash`,
        (r) => {
          const s = r.proof[i]!;
          r.proof[i] = "left" in s ? { left: flipHex(s.left) } : { right: flipHex(s.right) };
        },
        "signature",
      ]);
      cases.push([
        `proof[${i}] side`,
        (r) => {
          const s = r.proof[i]!;
          r.proof[i] = "left" in s ? { right: s.left } : { left: s.right };
        },
        "signature",
      ]);
      cases.push([`proof[${i}] removed`, (r) => r.proof.splice(i, 1), "signature"]);
      cases.push([`proof[${i}] not hex`, (r) => Object.assign(r.proof[i]!, { left: "zz" }), "format"]);
    }
    cases.push(
      ["proof step added", (r) => r.proof.push({ right: "00".repeat(32) }), "signature"],
      [
        "proof step with both sides",
        (r) => Object.assign(r.proof[0]!, { left: "00".repeat(32), right: "00".repeat(32) }),
        "format",
      ],
      [
        "write_set_digest",
        (r) => (r.leaf_components.write_set_digest = flipHex(r.leaf_components.write_set_digest)),
        "signature",
      ],
      [
        "claims_digest",
        (r) => (r.leaf_components.claims_digest = flipHex(r.leaf_components.claims_digest)),
        "signature",
      ],
      ["claims_digest short", (r) => (r.leaf_components.claims_digest = "00"), "format"],
      [
        "commit_evidence nonce",
        (r) =>
          (r.leaf_components.commit_evidence = r.leaf_components.commit_evidence.replace(/.$/, (c) =>
            c === "0" ? "1" : "0",
          )),
        "signature",
      ],
      [
        "commit_evidence txid",
        (r) =>
          (r.leaf_components.commit_evidence = r.leaf_components.commit_evidence.replace(
            `${VIEW}.28:`,
            `${VIEW}.29:`,
          )),
        "signature",
      ],
      ["commit_evidence malformed", (r) => (r.leaf_components.commit_evidence = "evidence"), "leaf"],
      ["commit_evidence seqno 0", (r) => (r.leaf_components.commit_evidence = "ce:2.0:00"), "leaf"],
      [
        "signature byte",
        (r) => {
          const sig = Buffer.from(r.signature, "base64");
          sig[sig.length - 1] = sig[sig.length - 1]! ^ 1;
          r.signature = sig.toString("base64");
        },
        "signature",
      ],
      ["signature of another root", (r) => (r.signature = jsonReceipts[0]!.signature), "signature"],
      ["signature not base64", (r) => (r.signature = "not base64!"), "format"],
      ["node_id", (r) => (r.node_id = flipHex(r.node_id)), "node_id"],
      ["node_id not hex", (r) => (r.node_id = "node-0"), "format"],
      [
        "cert garbage",
        (r) => (r.cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        "format",
      ],
      [
        "service_endorsements not an array",
        (r) => Object.assign(r, { service_endorsements: "none" }),
        "format",
      ],
      [
        "service_endorsements holds a stranger",
        (r) => r.service_endorsements.push(impostorCa.certPem),
        "endorsement",
      ],
      [
        "is_signature_transaction not boolean",
        (r) => Object.assign(r, { is_signature_transaction: "no" }),
        "format",
      ],
      ["unknown field", (r) => Object.assign(r, { extra: 1 }), "format"],
      ["unknown leaf component", (r) => Object.assign(r.leaf_components, { extra: "1" }), "format"],
    );
    for (const field of [
      "cert",
      "node_id",
      "signature",
      "proof",
      "leaf_components",
      "service_endorsements",
    ]) {
      cases.push([
        `${field} missing`,
        (r) => delete (r as unknown as Record<string, unknown>)[field],
        "format",
      ]);
    }
    for (const field of ["write_set_digest", "commit_evidence", "claims_digest"]) {
      cases.push([
        `leaf_components.${field} missing`,
        (r) => delete (r.leaf_components as unknown as Record<string, unknown>)[field],
        "format",
      ]);
    }
    for (const [name, tamper, check] of cases) {
      const r = sample();
      tamper(r);
      assertFails(verifyJsonReceipt(r, service.certPem), check, name);
    }
    assertFails(verifyJsonReceipt(null, service.certPem), "format", "null receipt");
    assertFails(verifyJsonReceipt([], service.certPem), "format", "array receipt");
    // The untouched sample still verifies: the failures above come from the tampering alone.
    assert.equal(verifyJsonReceipt(sample(), service.certPem).ok, true);
  });

  test("a receipt from another node or another service is refused", async () => {
    // A second genuine node's certificate in place of the signer's.
    const node1 = await makeNode(service, { name: "CN=Coco Node 1" });
    const swapped = { ...sample(), cert: node1.certPem };
    assertFails(verifyJsonReceipt(swapped, service.certPem), "node_id", "cert of another node");
    assertFails(
      verifyJsonReceipt({ ...swapped, node_id: node1.nodeId }, service.certPem),
      "signature",
      "cert and node_id of another node",
    );
    // A node of an impostor service signs a perfectly formed receipt: not endorsed by our service.
    const impostor = await makeNode(impostorCa);
    const forged = {
      ...sample(),
      cert: impostor.certPem,
      node_id: impostor.nodeId,
      signature: Buffer.from(
        signRootNode({ root: tree.root(signedSizeOf[SAMPLE]!), nodePrivateKeyPem: impostor.keyPem }),
      ).toString("base64"),
    };
    assertFails(
      verifyJsonReceipt(forged, service.certPem),
      "endorsement",
      "impostor node",
      /not .*Coco Service/,
    );
    assert.equal(verifyJsonReceipt(forged, impostorCa.certPem).ok, true);
    // Same again from an impostor that copies the service's name: only the signature tells them apart.
    const lookalikeCa = await makeServiceCa("CN=Coco Service");
    const lookalike = await makeNode(lookalikeCa, { withAuthorityKeyId: false });
    const lookalikeForged = {
      ...forged,
      cert: lookalike.certPem,
      node_id: lookalike.nodeId,
      signature: Buffer.from(
        signRootNode({ root: tree.root(signedSizeOf[SAMPLE]!), nodePrivateKeyPem: lookalike.keyPem }),
      ).toString("base64"),
    };
    assert.equal(verifyJsonReceipt(lookalikeForged, lookalikeCa.certPem).ok, true);
    assertFails(
      verifyJsonReceipt(lookalikeForged, service.certPem),
      "endorsement",
      "look-alike impostor",
      /not signed by the key of service certificate/,
    );
    // Our genuine receipt checked against the wrong service certificate.
    assertFails(verifyJsonReceipt(sample(), impostorCa.certPem), "endorsement", "service cert swapped");
    assertFails(verifyJsonReceipt(sample(), "not a cert"), "format", "service cert garbage");
  });

  test("certificate validity is checked at the given time only", async () => {
    assert.equal(
      verifyJsonReceipt(sample(), service.certPem, { at: new Date("2025-06-01T00:00:00Z") }).ok,
      true,
    );
    assertFails(
      verifyJsonReceipt(sample(), service.certPem, { at: new Date(VALID_FROM.getTime() - 1000) }),
      "certificate_validity",
      "before validity",
    );
    assertFails(
      verifyJsonReceipt(sample(), service.certPem, { at: new Date(VALID_TO.getTime() + 1000) }),
      "certificate_validity",
      "after validity",
    );
    // A node certificate that expired: fine without `at`, refused at a time after expiry.
    const shortLived = await makeNode(service, {
      keys: node.keys,
      notBefore: new Date("2025-01-01T00:00:00Z"),
      notAfter: new Date("2025-02-01T00:00:00Z"),
    });
    const r = { ...sample(), cert: shortLived.certPem };
    assert.equal(verifyJsonReceipt(r, service.certPem).ok, true);
    assert.equal(verifyJsonReceipt(r, service.certPem, { at: new Date("2025-01-15T00:00:00Z") }).ok, true);
    assertFails(
      verifyJsonReceipt(r, service.certPem, { at: new Date("2025-03-01T00:00:00Z") }),
      "certificate_validity",
      "expired node cert",
      /cert is valid from 2025-01-01T00:00:00.000Z to 2025-02-01T00:00:00.000Z/,
    );
    assertFails(
      verifyCoseReceipt(coseReceipts[SAMPLE]!, service.certPem, { at: new Date("2040-01-01T00:00:00Z") }),
      "certificate_validity",
      "COSE after service cert expiry",
    );
  });

  test("receipts from before a recovery verify through service_endorsements", async () => {
    const oldService = await makeServiceCa("CN=Coco Service (before recovery)");
    const newService = await makeServiceCa("CN=Coco Service (after recovery)");
    const oldNode = await makeNode(oldService);
    const root = tree.root(signedSizeOf[SAMPLE]!);
    const receipt = buildJsonReceipt({
      nodeCertPem: oldNode.certPem,
      nodeId: oldNode.nodeId,
      signature: signRootNode({ root, nodePrivateKeyPem: oldNode.keyPem }),
      proof: tree.path(SAMPLE, signedSizeOf[SAMPLE]!),
      leafComponents: leafComponentsOf(txs[SAMPLE]!),
      serviceEndorsements: [await endorse(oldService, newService)],
    });
    assert.equal(verifyJsonReceipt(receipt, newService.certPem).ok, true);
    assertFails(
      verifyJsonReceipt({ ...receipt, service_endorsements: [] }, newService.certPem),
      "endorsement",
      "no endorsement",
    );
    assertFails(
      verifyJsonReceipt(
        { ...receipt, service_endorsements: [await endorse(oldService, impostorCa)] },
        newService.certPem,
      ),
      "endorsement",
      "endorsed by a stranger",
    );
    assertFails(verifyJsonReceipt(receipt, impostorCa.certPem), "endorsement", "wrong current service");
  });

  test("every flipped byte of a COSE receipt fails", () => {
    const good = coseReceipts[SAMPLE]!;
    for (let i = 0; i < good.length; i++) {
      const altered = Uint8Array.from(good);
      altered[i] = altered[i]! ^ 0x01;
      const result = verifyCoseReceipt(altered, service.certPem);
      assert.equal(result.ok, false, `flipping byte ${i} still verified`);
    }
  });

  test("tampering with a COSE receipt's headers, proof or signature fails the right check", () => {
    const good = coseReceipts[SAMPLE]!;
    const message = coseDecodeSign1(good);
    /** Flips bits of the byte at `offset` into the first occurrence of `needle`. */
    const flipAt = (bytes: Uint8Array, needle: Uint8Array, offset = 0, xor = 0x80) => {
      const at = Buffer.from(bytes).indexOf(Buffer.from(needle));
      assert.ok(at >= 0, "needle not found");
      const out = Uint8Array.from(bytes);
      out[at + offset] = out[at + offset]! ^ xor;
      return out;
    };
    const path = tree.path(SAMPLE, signedSizeOf[SAMPLE]!);
    path.forEach((step, i) => {
      const sibling = "left" in step ? step.left : step.right;
      assertFails(
        verifyCoseReceipt(flipAt(good, sibling, 5), service.certPem),
        "signature",
        `path[${i}] hash`,
      );
    });
    const tx = txs[SAMPLE]!;
    assertFails(
      verifyCoseReceipt(flipAt(good, tx.writeSetDigest), service.certPem),
      "signature",
      "write set digest",
    );
    assertFails(
      verifyCoseReceipt(flipAt(good, tx.claimsDigest, 31), service.certPem),
      "signature",
      "claims digest",
    );
    assertFails(
      verifyCoseReceipt(flipAt(good, message.signature, 10), service.certPem),
      "signature",
      "signature",
    );
    assertFails(verifyCoseReceipt(flipAt(good, serviceKid, 3), service.certPem), "signature", "kid");
    // `left: true` (0xf5) -> `false` (0xf4) on the first path element.
    const firstSide = Uint8Array.from([0x82, "left" in path[0]! ? 0xf5 : 0xf4, 0x58, 0x20]);
    const sideFlipped = flipAt(good, firstSide, 1, 0x01);
    assertFails(verifyCoseReceipt(sideFlipped, service.certPem), "signature", "path[0] side");
    // vds 395 => 2 becomes 3 inside the protected header.
    assertFails(
      verifyCoseReceipt(flipAt(good, Uint8Array.from([0x19, 0x01, 0x8b, 0x02]), 3, 0x01), service.certPem),
      "format",
      "vds",
      /vds \(395\) must be 2/,
    );
    assertFails(verifyCoseReceipt(good, impostorCa.certPem), "signature", "other service cert");
    assertFails(verifyCoseReceipt(good.subarray(0, good.length - 3), service.certPem), "format", "truncated");

    const rebuild = (change: { unprotectedHeader?: Map<number | string, unknown>; payload?: Uint8Array }) =>
      coseEncodeSign1({
        protectedBytes: message.protectedBytes,
        unprotectedHeader: change.unprotectedHeader ?? message.unprotectedHeader,
        payload: change.payload ?? null,
        signature: message.signature,
      });
    assertFails(
      verifyCoseReceipt(rebuild({ payload: tree.root(signedSizeOf[SAMPLE]!) }), service.certPem),
      "format",
      "embedded payload",
    );
    assertFails(
      verifyCoseReceipt(rebuild({ unprotectedHeader: new Map() }), service.certPem),
      "format",
      "no proofs",
    );
    assertFails(
      verifyCoseReceipt(
        rebuild({ unprotectedHeader: new Map([[396, new Map([[-1, []]])]]) }),
        service.certPem,
      ),
      "format",
      "empty proof list",
    );
    assertFails(
      verifyCoseReceipt(
        rebuild({ unprotectedHeader: new Map([[396, new Map([[-1, [Uint8Array.from([0xa0])]]])]]) }),
        service.certPem,
      ),
      "format",
      "proof without leaf",
    );

    // A well-formed proof whose commit evidence is not Coco's format.
    const signedRoot = signRootCose({
      root: tree.root(signedSizeOf[SAMPLE]!),
      servicePrivateKeyPem: service.keyPem,
      serviceKid,
      txid: "2.34",
      issuedAt: ISSUED_AT,
    });
    const badEvidence = buildCoseReceipt({ signedRoot, proof: path, ...tx, commitEvidence: "evidence" });
    assertFails(verifyCoseReceipt(badEvidence, service.certPem), "leaf", "commit evidence format");
  });

  test("a COSE receipt may carry several inclusion proofs of the same root", () => {
    const a = coseDecodeSign1(coseReceipts[SAMPLE]!);
    const b = coseDecodeSign1(coseReceipts[SAMPLE + 1]!);
    const c = coseDecodeSign1(coseReceipts[0]!); // a different signed root
    const proofOf = (m: typeof a) =>
      ((m.unprotectedHeader.get(396) as Map<number, Uint8Array[]>).get(-1) as Uint8Array[])[0]!;
    const withProofs = (proofs: Uint8Array[]) =>
      coseEncodeSign1({
        protectedBytes: a.protectedBytes,
        unprotectedHeader: new Map([[396, new Map([[-1, proofs]])]]),
        payload: null,
        signature: a.signature,
      });
    const both = verifyCoseReceipt(withProofs([proofOf(a), proofOf(b)]), service.certPem);
    assert.deepEqual(both, {
      ok: true,
      root: hex(tree.root(signedSizeOf[SAMPLE]!)),
      txid: `${VIEW}.${SAMPLE + 1}`,
    });
    assertFails(
      verifyCoseReceipt(withProofs([proofOf(a), proofOf(c)]), service.certPem),
      "format",
      "proofs disagree",
    );
  });

  test("verifiers answer any input with a result, never an exception", () => {
    const fields = Object.keys(sample());
    fc.assert(
      fc.property(fc.anything(), fc.constantFrom(...fields), fc.jsonValue(), (junk, field, value) => {
        const a = verifyJsonReceipt(junk, service.certPem);
        assert.equal(a.ok, false);
        const r = sample() as unknown as Record<string, unknown>;
        if (JSON.stringify(r[field]) === JSON.stringify(value)) return; // not a change
        r[field] = value;
        assert.equal(verifyJsonReceipt(r, service.certPem).ok, false, `${field} = ${JSON.stringify(value)}`);
      }),
      { numRuns: 200 },
    );
    const good = coseReceipts[SAMPLE]!;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(good.length - 1), (junk, cut) => {
        assert.equal(verifyCoseReceipt(junk, service.certPem).ok, false);
        const spliced = Buffer.concat([good.subarray(0, cut), junk]);
        if (spliced.equals(good)) return; // not a change
        assert.equal(verifyCoseReceipt(spliced, service.certPem).ok, false);
      }),
      { numRuns: 200 },
    );
  });

  test("builders refuse bad input with ReceiptError", () => {
    const root = tree.root(5);
    const base = { root, servicePrivateKeyPem: service.keyPem, serviceKid, txid: "2.6", issuedAt: ISSUED_AT };
    assert.throws(() => signRootCose({ ...base, root: root.subarray(1) }), /Merkle root must be 32 bytes/);
    assert.throws(() => signRootCose({ ...base, txid: "2-6" }), ReceiptError);
    assert.throws(() => signRootCose({ ...base, issuedAt: 1.5 }), ReceiptError);
    assert.throws(() => signRootCose({ ...base, serviceKid: new Uint8Array() }), ReceiptError);
    assert.throws(
      () => signRootCose({ ...base, servicePrivateKeyPem: "x" }),
      /service key is not a PEM private key/,
    );
    assert.throws(
      () => signRootNode({ root: new Uint8Array(3), nodePrivateKeyPem: node.keyPem }),
      ReceiptError,
    );
    assert.throws(
      () => leafFromComponents({ ...txs[0]!, writeSetDigest: new Uint8Array(31) }),
      /write set digest/,
    );
    const json = {
      nodeCertPem: node.certPem,
      nodeId: node.nodeId,
      signature: new Uint8Array(70),
      proof: [],
      leafComponents: leafComponentsOf(txs[0]!),
    };
    assert.throws(() => buildJsonReceipt({ ...json, nodeId: "x" }), ReceiptError);
    assert.throws(() => buildJsonReceipt({ ...json, signature: new Uint8Array() }), ReceiptError);
    assert.throws(() => buildJsonReceipt({ ...json, proof: [{ left: new Uint8Array(2) }] }), /proof step 0/);
    const cose = { signedRoot: signRootCose(base), proof: [], ...txs[0]! };
    assert.throws(() => buildCoseReceipt({ ...cose, claimsDigest: new Uint8Array(1) }), ReceiptError);
    assert.throws(() => buildCoseReceipt({ ...cose, signedRoot: new Uint8Array([1, 2]) }), /COSE_Sign1/);
  });

  test("a one-transaction tree gives an empty proof that still verifies", () => {
    const one = new MerkleTree();
    one.append(leafFromComponents(txs[0]!));
    const root = one.root();
    const signedRoot = signRootCose({
      root,
      servicePrivateKeyPem: service.keyPem,
      serviceKid,
      txid: "2.2",
      issuedAt: 1,
    });
    const cose = buildCoseReceipt({ signedRoot, proof: one.path(0, 1), ...txs[0]! });
    assert.deepEqual(verifyCoseReceipt(cose, service.certPem), { ok: true, root: hex(root), txid: "2.1" });
    const json = buildJsonReceipt({
      nodeCertPem: node.certPem,
      nodeId: node.nodeId,
      signature: signRootNode({ root, nodePrivateKeyPem: node.keyPem }),
      proof: [],
      leafComponents: leafComponentsOf(txs[0]!),
    });
    assert.deepEqual(verifyJsonReceipt(json, service.certPem), { ok: true, root: hex(root), txid: "2.1" });
  });
});
