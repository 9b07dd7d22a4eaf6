import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type ConnectionOptions, connect, type TLSSocket } from "node:tls";
import { Agent, request } from "undici";
import { createIdentityCertificate } from "../../src/crypto/index.ts";
import { signGovRequest } from "../../src/gov/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import type { Identity } from "../helpers/network.ts";

/**
 * Issue 11, findings 5 and 7 (TLS): certificates outside their validity dates identify nobody,
 * over TLS or in COSE-signed governance requests; the client port speaks TLS 1.3, or TLS 1.2 with
 * ECDHE and AEAD suites only; node-to-node channels speak TLS 1.3 only. Against a real node.
 */

const DAY = 86_400_000;
let cluster: Cluster;
let node: RunningNode;
let expired: Identity;
let notYetValid: Identity;
let expiredMember: Identity;

async function identity(name: string, start: number): Promise<Identity> {
  return createIdentityCertificate({
    name,
    now: new Date(start),
    serial: crypto.getRandomValues(new Uint8Array(16)),
    validityDays: 1,
  });
}

before(async () => {
  cluster = await Cluster.create();
  expired = await identity("expired-user", Date.now() - 2 * DAY);
  notYetValid = await identity("future-user", Date.now() + DAY);
  expiredMember = await identity("expired-member", Date.now() - 2 * DAY);
  writeFileSync(join(cluster.dir, "expired_user.pem"), expired.certPem);
  writeFileSync(join(cluster.dir, "future_user.pem"), notYetValid.certPem);
  writeFileSync(join(cluster.dir, "expired_member.pem"), expiredMember.certPem);
  node = await cluster.startService({
    users: [{ cert: "user0_cert.pem" }, { cert: "expired_user.pem" }, { cert: "future_user.pem" }],
    members: [{ cert: "member0_cert.pem" }, { cert: "expired_member.pem" }],
  });
  await cluster.untilOpen();
});

after(async () => {
  await cluster.stop();
});

/** A TLS handshake with the node's client port; resolves with the socket or rejects with the error. */
function handshake(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      ca: node.node.identity.serviceCertPem,
      servername: "localhost",
      ...options,
    });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

async function callAs(who: Identity, method: "GET" | "PUT", path: string, body?: unknown) {
  const agent = new Agent({
    connect: { ca: node.node.identity.serviceCertPem, cert: who.certPem, key: who.privateKeyPem },
  });
  try {
    const res = await request(cluster.url(node, path), {
      method,
      dispatcher: agent,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : {} };
  } finally {
    await agent.close();
  }
}

/**
 * The store's version once it has stopped moving: the signature timer may still be signing the
 * previous test's writes, which is not a write of this one. Bounded: gives up after ~7 s.
 */
async function settledVersion(): Promise<number> {
  let v = node.node.state.store.version;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 150));
    if (node.node.state.store.version === v) return v;
    v = node.node.state.store.version;
  }
  return v;
}

describe("client certificates outside their validity dates", () => {
  test("an expired user certificate: 401, and its write is not run", async () => {
    const version = await settledVersion();
    const put = await callAs(expired, "PUT", "/app/log/private?id=7", { msg: "from an expired cert" });
    assert.equal(put.status, 401);
    assert.equal(put.json.error.code, "InvalidAuthenticationInfo");
    assert.match(put.json.error.message, /certificate expired\/not yet valid: it expired at/);
    assert.equal(node.node.state.store.version, version, "nothing was written");
    const get = await callAs(expired, "GET", "/app/log/private?id=7");
    assert.equal(get.status, 401);
  });

  test("a user certificate not yet valid: 401", async () => {
    const get = await callAs(notYetValid, "GET", "/app/log/private?id=7");
    assert.equal(get.status, 401);
    assert.match(get.json.error.message, /certificate expired\/not yet valid: it is not valid before/);
  });

  test("receipts (any_cert) refuse an expired certificate too; a valid user is served", async () => {
    const ok = await cluster.call(node, "PUT", "/app/log/private?id=8", { body: { msg: "hello" } });
    assert.equal(ok.status, 200);
    const txid = ok.headers["x-ms-ccf-transaction-id"];
    const receipt = await callAs(expired, "GET", `/app/receipt?transaction_id=${txid}`);
    assert.equal(receipt.status, 401);
  });

  test("a governance request signed with an expired member certificate: 401 CertificateExpired", async () => {
    const memberId = (await import("../../src/crypto/index.ts")).certFingerprint(expiredMember.certPem);
    const bytes = signGovRequest({
      keyPem: expiredMember.privateKeyPem,
      certPem: expiredMember.certPem,
      type: "state_digest",
      createdAt: Math.floor(Date.now() / 1000),
      payload: new Uint8Array(),
    });
    const version = await settledVersion();
    const agent = new Agent({ connect: { ca: node.node.identity.serviceCertPem } });
    const res = await request(
      cluster.url(node, `/gov/members/state-digests/${memberId}:update?api-version=2024-07-01`),
      {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/cose" },
        body: Buffer.from(bytes),
      },
    );
    const json = (await res.body.json()) as { error: { code: string; message: string } };
    await agent.close();
    assert.equal(res.statusCode, 401);
    assert.equal(json.error.code, "CertificateExpired");
    assert.match(json.error.message, /certificate expired\/not yet valid/);
    assert.equal(node.node.state.store.version, version, "nothing was written");
  });
});

describe("TLS versions and cipher suites", () => {
  test("TLS 1.2 with CBC (SHA-1 and SHA-2 MAC) suites: the handshake fails", async () => {
    for (const ciphers of [
      "ECDHE-ECDSA-AES128-SHA",
      "ECDHE-ECDSA-AES256-SHA384",
      "ECDHE-ECDSA-AES128-SHA256",
    ]) {
      await assert.rejects(
        handshake(node.port, { maxVersion: "TLSv1.2", ciphers }),
        (err: NodeJS.ErrnoException) => {
          // The server's alert, not a client that could not offer the suite.
          assert.match(String(err.code), /ALERT_HANDSHAKE_FAILURE/, `${ciphers}: ${err.message}`);
          return true;
        },
      );
    }
  });

  test("TLS 1.1: the handshake fails", async () => {
    await assert.rejects(
      handshake(node.port, { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }),
      (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /ALERT_PROTOCOL_VERSION/, err.message);
        return true;
      },
    );
  });

  test("TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 succeeds; TLS 1.3 is preferred", async () => {
    for (const cipher of ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]) {
      const socket = await handshake(node.port, { maxVersion: "TLSv1.2", ciphers: cipher });
      assert.equal(socket.getProtocol(), "TLSv1.2");
      assert.equal(socket.getCipher().standardName.includes("GCM") || cipher.includes("CHACHA"), true);
      socket.destroy();
    }
    const modern = await handshake(node.port, {});
    assert.equal(modern.getProtocol(), "TLSv1.3");
    modern.destroy();
  });

  test("node-to-node channels refuse TLS 1.2 altogether", async () => {
    await assert.rejects(
      handshake(node.node.config.nodeAddress.port, {
        maxVersion: "TLSv1.2",
        ca: node.node.identity.serviceCertPem,
        rejectUnauthorized: false,
      }),
      (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /ALERT_PROTOCOL_VERSION/, err.message);
        return true;
      },
    );
  });
});
