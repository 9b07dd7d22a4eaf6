import assert from "node:assert/strict";
import { test } from "node:test";
import { newNodeKey } from "../../src/node/identity.ts";
import { generateEncryptionKey, JoinError, parseJoinRequest, signJoinProof } from "../../src/node/join.ts";

const key = await newNodeKey("127.0.0.1");
const other = await newNodeKey("127.0.0.1");
const encryption = generateEncryptionKey();
const valid = {
  node_public_key: key.publicKeyPem,
  certificate_signing_request: key.csrPem,
  encryption_public_key: encryption.publicKeyPem,
  encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
  rpc_address: "127.0.0.1:8000",
  node_address: "127.0.0.1:8001",
  attestation: { format: "virtual" },
};

test("a join request needs its certificate signing request: the certificate is endorsed from it on trust", () => {
  assert.equal(parseJoinRequest(valid).certificate_signing_request, key.csrPem);
  const { certificate_signing_request: _, ...withoutCsr } = valid;
  assert.throws(
    () => parseJoinRequest(withoutCsr),
    (e: unknown) =>
      e instanceof JoinError && e.status === 400 && /certificate_signing_request is required/.test(e.message),
  );
});

test("bad join requests are refused with the field that is wrong", () => {
  const cases: Array<[Record<string, unknown> | unknown, RegExp]> = [
    [null, /JSON object/],
    [[], /JSON object/],
    [{ ...valid, node_public_key: 7 }, /node_public_key must be a string/],
    [{ ...valid, rpc_address: "nowhere" }, /rpc_address must be host:port/],
    [{ ...valid, node_public_key: encryption.publicKeyPem }, /P-384/],
    [{ ...valid, encryption_public_key: key.publicKeyPem }, /RSA/],
    [{ ...valid, certificate_signing_request: 42 }, /certificate_signing_request must be a PEM string/],
    [{ ...valid, certificate_signing_request: "garbage" }, /certificate_signing_request: .*not readable/],
    [{ ...valid, certificate_signing_request: other.csrPem }, /for another key than node_public_key/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => parseJoinRequest(body),
      (e: unknown) => e instanceof JoinError && e.status === 400 && message.test(e.message),
      String(message),
    );
  }
});
