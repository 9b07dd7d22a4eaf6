/**
 * Who may sign the ledger (docs/security.md): a signature transaction counts only if its signer
 * is a Trusted node with its endorsed certificate and the one primary of its view. These tests
 * forge signatures with the keys and certificates of nodes the service endorsed but does not
 * trust, against a real 3-node service, and show backups and `coco ledger audit` refuse them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  fromHex,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  sha256,
  signP384,
} from "../../src/crypto/index.ts";
import { CHUNK_HEADER } from "../../src/ledger/chunks.ts";
import {
  type DecodedEntry,
  decodeEntry,
  EntryType,
  encodeEntry,
  LedgerSecrets,
  LedgerState,
  readLedgerDir,
  readSignatureEntry,
  SINGLETON_KEY,
  type SignatureRecord,
  type SigningKeys,
  Tables,
} from "../../src/ledger/index.ts";
import { auditLedger, type RunningNode, realEnvironment } from "../../src/node/index.ts";
import type { Replica } from "../../src/node/replica.ts";
import { budget } from "../e2e/waits.ts";
import { stopAndAuditLedgers } from "../helpers/audit.ts";
import { coco } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";

const commit = { "x-coco-wait": "commit" };

function secretsOf(node: RunningNode): LedgerSecrets {
  return new LedgerSecrets(
    node.node.identity.ledgerSecrets.map((s) => ({
      version: s.version,
      key: new Uint8Array(Buffer.from(s.key, "base64")),
    })),
  );
}

async function ledgerEntries(node: RunningNode): Promise<DecodedEntry[]> {
  await node.node.flush();
  const entries: DecodedEntry[] = [];
  for await (const { entry } of readLedgerDir(join(node.node.config.dir, "ledger"))) entries.push(entry);
  return entries;
}

function signingKeys(node: RunningNode): SigningKeys {
  const id = node.node.identity;
  return {
    nodeId: id.nodeId,
    nodeCertPem: id.nodeCertPem,
    nodePrivateKey: p384PrivateKey(id.nodePrivateKeyPem),
    servicePrivateKey: p384PrivateKey(id.servicePrivateKeyPem),
    serviceKid: sha256(new TextEncoder().encode("kid")),
  };
}

/**
 * The signature transaction `signer` would make next, in `view`, over `entries`: what a node
 * holding the ledger and its secrets (a retired node, say) could send.
 */
function nextSignature(entries: DecodedEntry[], secrets: LedgerSecrets, signer: SigningKeys, view: number) {
  const made: Uint8Array[] = [];
  const state = LedgerState.restore({
    env: realEnvironment,
    keys: signer,
    secrets,
    sink: { append: (_seqno, frame) => made.push(frame) > 0 },
    entries,
  });
  state.enterView(view);
  state.emitSignature();
  return made[0]!;
}

/** `entry` (a signature transaction) with its node signature replaced by `signer`'s over the same root. */
function resigned(entry: DecodedEntry, signer: { nodeId: string; certPem: string; privateKeyPem: string }) {
  const { record } = readSignatureEntry(entry);
  const forged: SignatureRecord = {
    ...record,
    node: signer.nodeId,
    cert: signer.certPem,
    sig: Buffer.from(signP384(p384PrivateKey(signer.privateKeyPem), fromHex(record.root))).toString("base64"),
  };
  const writeSet = entry.publicWriteSet.map((map) =>
    map.name === Tables.signatures
      ? {
          name: map.name,
          updates: [{ key: SINGLETON_KEY, value: new TextEncoder().encode(JSON.stringify(forged)) }],
        }
      : map,
  );
  return encodeEntry({ ...entry, writeSet }, new LedgerSecrets([{ version: 0, key: new Uint8Array(32) }]));
}

/** A ledger directory holding `frames` as one committed chunk (it must end on a signature). */
function writeLedgerCopy(frames: Uint8Array[], firstSeqno: number): string {
  const dir = mkdtempSync(join(tmpdir(), "coco-forged-ledger-"));
  const last = firstSeqno + frames.length - 1;
  writeFileSync(
    join(dir, `ledger_${firstSeqno}-${last}.committed`),
    Buffer.concat([CHUNK_HEADER, ...frames]),
  );
  return dir;
}

test("signatures by endorsed but untrusted nodes, or by a second node in a view, are refused by backups and by audit", {
  timeout: budget(180_000),
}, async () => {
  const cluster = await Cluster.create();
  const copies: string[] = [];
  try {
    const n0 = await cluster.startService({ openAtNodes: 3 });
    const n1 = await cluster.join("n1", n0);
    const n2 = await cluster.join("n2", n0);
    await cluster.untilOpen();
    for (let i = 0; i < 6; i++) {
      const res = await cluster.call(n0, "PUT", `/app/log/private?id=${i}`, {
        body: { msg: `v${i}` },
        headers: commit,
      });
      assert.equal(res.status, 200, res.text);
    }
    // One node is retired by vote: it keeps its key, its endorsed certificate and the ledger secrets.
    const retiredNode = cluster.nodes.find((n) => !n.node.isPrimary)!;
    const stayed = [n0, n1, n2].filter((n) => n !== retiredNode);
    assert.equal((await cluster.retireNode(retiredNode.node.nodeId)).proposalState, "Accepted");
    await cluster.until("the retirement has taken effect", () => {
      const configs = cluster.primary()?.node.consensusStatus?.configs ?? [];
      return configs.length === 1 && !configs[0]!.nodes.includes(retiredNode.node.nodeId);
    });
    await retiredNode.stop();
    const res = await cluster.call(stayed[0]!, "PUT", "/app/log/private?id=99", {
      body: { msg: "x" },
      headers: commit,
    });
    assert.equal(res.status, 200, res.text);
    await cluster.until("both nodes hold the same committed ledger", () =>
      stayed.every(
        (n) =>
          n.node.state.commitSeqno === n.node.state.lastSeqno &&
          n.node.state.lastSeqno === stayed[0]!.node.state.lastSeqno,
      ),
    );
    const primary = cluster.primary()!;
    const backup = stayed.find((n) => n !== primary)!;
    const view = primary.node.state.view;
    const state = backup.node.state;
    const entries = await ledgerEntries(backup);
    assert.equal(entries.length, state.lastSeqno);
    const next = state.lastSeqno + 1;

    // Attackers: a key with a certificate the service issued (as a joiner's), the retired node,
    // and the trusted backup itself signing in the primary's view.
    const stranger = generateP384KeyPair();
    const strangerCert = await issueNodeCertificate({
      service: {
        certPem: primary.node.identity.serviceCertPem,
        privateKeyPem: primary.node.identity.servicePrivateKeyPem,
      },
      nodePublicKeyPem: stranger.publicKeyPem,
      now: new Date(),
      serial: new Uint8Array([0x5e, 1]),
    });
    const strangerKeys: SigningKeys = {
      nodeId: nodeIdOf(stranger.publicKeyPem),
      nodeCertPem: strangerCert,
      nodePrivateKey: p384PrivateKey(stranger.privateKeyPem),
      servicePrivateKey: p384PrivateKey(stranger.privateKeyPem),
      serviceKid: sha256(new TextEncoder().encode("kid")),
    };
    const secrets = secretsOf(backup);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      [
        "a service-endorsed node that is not recorded",
        nextSignature(entries, secrets, strangerKeys, view),
        new RegExp(
          `signed by node ${strangerKeys.nodeId} which is not Trusted at seqno ${next} \\(no such node\\)`,
        ),
      ],
      [
        "the retired node",
        nextSignature(entries, secrets, signingKeys(retiredNode), view),
        new RegExp(
          `signed by node ${retiredNode.node.nodeId} which is not Trusted at seqno ${next} \\(it is Retired\\)`,
        ),
      ],
      [
        "a trusted backup in the primary's view",
        nextSignature(entries, secrets, signingKeys(backup), view),
        new RegExp(`view ${view} signed by two nodes: ${primary.node.nodeId} and ${backup.node.nodeId}`),
      ],
    ];
    const before = {
      store: state.store.snapshot(),
      last: state.lastSeqno,
      signature: state.lastSignatureSeqno,
    };
    for (const [who, frame, reason] of cases) {
      assert.throws(
        () => state.applyReplicated(decodeEntry(frame), { view, primary: primary.node.nodeId }),
        reason,
        who,
      );
      assert.deepEqual(state.store.snapshot(), before.store, `${who}: nothing applied`);
      assert.equal(state.lastSeqno, before.last);
      assert.equal(state.lastSignatureSeqno, before.signature);
    }
    // Sent by anyone but the primary this backup follows, even a trusted node's signature is refused.
    assert.throws(
      () =>
        state.applyReplicated(decodeEntry(nextSignature(entries, secrets, signingKeys(backup), view + 1)), {
          view: view + 1,
          primary: primary.node.nodeId,
        }),
      new RegExp(`view ${view + 1}'s entries come from its primary ${primary.node.nodeId}`),
    );
    assert.equal(state.lastSeqno, before.last);

    // Audit: the untouched ledger is clean; copies with one signature re-signed by an untrusted
    // node, or by a second node of a view, fail at that seqno and say why.
    const serviceCertFile = join(cluster.dir, "service_cert.pem");
    const clean = await auditLedger(
      join(primary.node.config.dir, "ledger"),
      primary.node.identity.serviceCertPem,
    );
    assert.equal(clean.ok, true, JSON.stringify(clean.failure));
    const signatures = entries.filter((e) => e.type === EntryType.Signature);
    const target = signatures.findLast((s) =>
      signatures.some((o) => o.seqno < s.seqno && o.view === s.view),
    )!;
    assert.ok(target, "some view has two signatures");
    const frames = entries.slice(0, target.seqno).map((e) => e.frame);
    const forgeries: Array<[string, { nodeId: string; certPem: string; privateKeyPem: string }, RegExp]> = [
      [
        "retired",
        {
          nodeId: retiredNode.node.nodeId,
          certPem: retiredNode.node.identity.nodeCertPem,
          privateKeyPem: retiredNode.node.identity.nodePrivateKeyPem,
        },
        new RegExp(`signed by node ${retiredNode.node.nodeId} which is not Trusted at seqno ${target.seqno}`),
      ],
      [
        "stranger",
        { nodeId: strangerKeys.nodeId, certPem: strangerCert, privateKeyPem: stranger.privateKeyPem },
        /which is not Trusted at seqno \d+ \(no such node\)/,
      ],
    ];
    const signerOfView = readSignatureEntry(signatures.find((s) => s.view === target.view)!).record.node;
    const other = stayed.find((n) => n.node.nodeId !== signerOfView)!;
    forgeries.push([
      "second signer",
      {
        nodeId: other.node.nodeId,
        certPem: other.node.identity.nodeCertPem,
        privateKeyPem: other.node.identity.nodePrivateKeyPem,
      },
      new RegExp(`view ${target.view} signed by two nodes: ${signerOfView} and ${other.node.nodeId}`),
    ]);
    for (const [who, signer, reason] of forgeries) {
      const dir = writeLedgerCopy([...frames.slice(0, -1), resigned(target, signer)], 1);
      copies.push(dir);
      const report = await auditLedger(dir, primary.node.identity.serviceCertPem);
      assert.equal(report.ok, false, who);
      assert.equal(report.failure?.seqno, target.seqno, who);
      assert.match(report.failure!.message, reason, who);
      const cli = coco(["ledger", "audit", dir, "--service-cert", serviceCertFile]);
      assert.equal(cli.status, 1, who);
      assert.match(cli.stderr, new RegExp(`ledger INVALID at seqno ${target.seqno} .*${reason.source}`), who);
    }
    const untouched = writeLedgerCopy(frames, 1);
    copies.push(untouched);
    assert.equal((await auditLedger(untouched, primary.node.identity.serviceCertPem)).ok, true);

    // The refusal path of a running backup: the forged entry arrives in the primary's
    // AppendEntries; the backup logs why, stops following, and neither applies nor persists it.
    const replica = (backup.node as unknown as { replica: Replica }).replica;
    const prev = entries.at(-1)!;
    replica.step(primary.node.nodeId, {
      type: "append_entries",
      from: primary.node.nodeId,
      to: backup.node.nodeId,
      view,
      prevSeqno: prev.seqno,
      prevView: prev.view,
      entries: [{ seqno: next, view, isSignature: true, data: cases[1]![1] }],
      commitSeqno: state.commitSeqno,
    });
    assert.match(replica.refusal ?? "", /which is not Trusted at seqno \d+ \(it is Retired\)/);
    assert.equal(state.lastSeqno, before.last);
    assert.equal((await ledgerEntries(backup)).length, before.last);
  } finally {
    for (const dir of copies) rmSync(dir, { recursive: true, force: true });
    await cluster.stop();
  }
});

test("after elections and a restart of the old primary, every node's ledger audits clean", {
  timeout: budget(180_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService({ openAtNodes: 3 });
    await cluster.join("n1", n0);
    await cluster.join("n2", n0);
    await cluster.untilOpen();
    const write = async (id: number) => {
      // An idle machine's 5 s of attempts, stretched by the load.
      for (const end = Date.now() + budget(5_000); Date.now() < end; ) {
        const via = cluster.primary();
        const res = via
          ? await cluster.call(via, "PUT", `/app/log/private?id=${id}`, {
              body: { msg: `v${id}` },
              headers: commit,
            })
          : undefined;
        if (res?.status === 200) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`write ${id} never committed`);
    };
    for (let i = 0; i < 3; i++) await write(i);
    // Two elections: the primary stops each time; the first one comes back and replays its files.
    const first = cluster.primary()!;
    const firstName = first.node.config.dir.split("/").at(-1)!;
    await first.stop();
    cluster.nodes.splice(cluster.nodes.indexOf(first), 1);
    await cluster.until("another node is primary", () =>
      cluster.nodes.some((n) => n !== first && n.node.isPrimary),
    );
    for (let i = 3; i < 6; i++) await write(i);
    const again = await cluster.start(firstName, {
      join: { target: "127.0.0.1:1", serviceCertFile: "service_cert.pem" },
      nodeAddress: `127.0.0.1:${first.node.config.nodeAddress.port}`,
      rpc: { address: `127.0.0.1:${first.port}` },
    });
    const second = cluster.primary()!;
    await cluster.until(
      "the restarted node caught up",
      () => again.node.state.commitSeqno >= second.node.state.commitSeqno,
    );
    await second.stop();
    cluster.nodes.splice(cluster.nodes.indexOf(second), 1);
    await cluster.until("a third view has a primary", () =>
      cluster.nodes.some((n) => n !== second && n.node.isPrimary),
    );
    for (let i = 6; i < 9; i++) await write(i);
    const views = new Set((await ledgerEntries(cluster.primary()!)).map((e) => e.view));
    assert.ok(views.size >= 3, `views in the ledger: ${[...views]}`);
    assert.equal(await stopAndAuditLedgers([...cluster.nodes, second]), 3);
  } finally {
    await cluster.stop();
  }
});
