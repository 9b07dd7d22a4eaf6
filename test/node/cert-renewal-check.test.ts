import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
} from "../../src/crypto/index.ts";
import { renewalProblem } from "../../src/node/cert-renewal.ts";
import type { NodeIdentity } from "../../src/node/identity.ts";

const now = new Date();
const serial = (n: number) => Uint8Array.of(0x30, n);
const service = await createServiceIdentity({ now, serial: serial(1) });
const other = await createServiceIdentity({ now, serial: serial(2) });
const key = generateP384KeyPair();
const issue = (by: typeof service, publicKeyPem: string, at: Date, n: number) =>
  issueNodeCertificate({ service: by, nodePublicKeyPem: publicKeyPem, now: at, serial: serial(n) });
const identity: NodeIdentity = {
  nodeId: nodeIdOf(key.publicKeyPem),
  nodePrivateKeyPem: key.privateKeyPem,
  nodeCertPem: await issue(service, key.publicKeyPem, now, 3),
  servicePrivateKeyPem: service.privateKeyPem,
  serviceCertPem: service.certPem,
  ledgerSecrets: [],
};

test("renewed certificates are served only if they keep the keys, chain to the service, and are valid now", async () => {
  const renewed = await issue(service, key.publicKeyPem, now, 4);
  assert.equal(renewalProblem(identity, renewed, service.certPem, now), undefined);

  const later = new Date(now.getTime() + 3_600_000);
  const notYet = renewalProblem(
    identity,
    await issue(service, key.publicKeyPem, later, 5),
    service.certPem,
    now,
  );
  assert.equal(notYet?.permanent, false, "valid in an hour: look again later");
  assert.match(notYet?.reason ?? "", /not valid before/);

  const otherKey = generateP384KeyPair();
  const wrongNode = renewalProblem(
    identity,
    await issue(service, otherKey.publicKeyPem, now, 6),
    service.certPem,
    now,
  );
  assert.deepEqual(wrongNode, { reason: "the node certificate is for another key", permanent: true });

  const wrongService = renewalProblem(
    identity,
    await issue(other, key.publicKeyPem, now, 7),
    other.certPem,
    now,
  );
  assert.deepEqual(wrongService, { reason: "the service certificate is for another key", permanent: true });

  const unissued = renewalProblem(
    identity,
    await issue(other, key.publicKeyPem, now, 8),
    service.certPem,
    now,
  );
  assert.equal(unissued?.permanent, true);
  assert.match(unissued?.reason ?? "", /^the node certificate: /);

  assert.equal(renewalProblem(identity, "garbage", service.certPem, now)?.permanent, true);
});
