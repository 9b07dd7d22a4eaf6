import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import type { TLSSocket } from "node:tls";
import { certFingerprint } from "../../src/crypto/index.ts";
import { Store } from "../../src/kv/index.ts";
import { Tables } from "../../src/ledger/index.ts";
import { clientCertificateDer, identifyPeer } from "../../src/rpc/auth.ts";
import { makeIdentity } from "../helpers/network.ts";

const enc = new TextEncoder();

/** A TLS connection as auth.ts reads it: the certificate its client presented, counting the reads. */
function connection(certPem: string) {
  const cert = new X509Certificate(certPem);
  const socket = {
    reads: 0,
    getPeerCertificate() {
      socket.reads++;
      return { raw: cert.raw, valid_from: cert.validFrom, valid_to: cert.validTo };
    },
  };
  return socket;
}

function write(store: Store, table: string, id: string, value: string | null): void {
  const tx = store.begin();
  if (value === null) tx.map(table).delete(enc.encode(id));
  else tx.map(table).set(enc.encode(id), enc.encode(value));
  assert.ok(store.commit(tx).ok);
}

test("a connection's caller follows the store: a user removed or made a member is seen on the next request", async () => {
  const { certPem } = await makeIdentity("caller");
  const id = certFingerprint(certPem);
  const store = new Store();
  write(store, Tables.usersCerts, id, certPem);
  const socket = connection(certPem);
  const tls = socket as unknown as TLSSocket;

  assert.deepEqual(identifyPeer(tls, store), { id, user: certPem, member: null });
  assert.deepEqual(identifyPeer(tls, store), { id, user: certPem, member: null });
  // Another user's arrival changes nothing for this caller.
  write(store, Tables.usersCerts, "00".repeat(32), "another");
  assert.deepEqual(identifyPeer(tls, store), { id, user: certPem, member: null });

  write(store, Tables.usersCerts, id, null);
  assert.deepEqual(identifyPeer(tls, store), { id, user: null, member: null });
  write(store, Tables.membersCerts, id, certPem);
  assert.deepEqual(identifyPeer(tls, store), { id, user: null, member: certPem });

  // A store replaced (a snapshot installed) is read afresh.
  const fresh = new Store();
  assert.deepEqual(identifyPeer(tls, fresh), { id, user: null, member: null });

  // The certificate itself is read from the connection once, and forwarded calls carry its DER.
  assert.equal(socket.reads, 1);
  assert.deepEqual(clientCertificateDer(tls), new Uint8Array(new X509Certificate(certPem).raw));
  assert.equal(socket.reads, 1);
});

test("a connection without a client certificate names nobody and forwards no certificate", () => {
  const socket = { getPeerCertificate: () => ({}) } as unknown as TLSSocket;
  assert.deepEqual(identifyPeer(socket, new Store()), { id: null, user: null, member: null });
  assert.equal(clientCertificateDer(socket), null);
});
