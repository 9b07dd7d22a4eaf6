// Joining on SEV-SNP, end to end with in-process nodes. A real vector report cannot carry a key
// made here, so it is refused for the binding; acceptance uses reports signed by a fake AMD that
// only the test trusts, through `node.joinVerifier` (in-process; no config can reach it). Joiners
// get their reports from a report command, or from a simulated configfs-tsm handed to `runNode`
// through its in-process `attestationSeams`.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { verifyNode } from "../../src/cli/attestation-node.ts";
import type { GovClient } from "../../src/client/index.ts";
import { newNodeKey } from "../../src/node/identity.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { generateEncryptionKey, JoinVerifier, signJoinProof } from "../../src/node/join.ts";
import type { TsmFileSystem } from "../../src/tee/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { type FakeAmd, fakeSnpNodeFiles, makeFakeAmd } from "../tee/fake-amd.ts";
import { fakeReport } from "../tee/fake-report.ts";
import { fakeGuest, SEAM_KEY_COMMAND, sealingSeams } from "../tee/fake-snp-keys.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const MEASUREMENT = "c0de".repeat(24);
const SECURITY_POLICY = "package coco\ndefault allow := true\n";
const HOST_DATA = createHash("sha256").update(SECURITY_POLICY).digest("hex");
const YES = "export function vote (proposal, proposerId) { return true }";
/** SNP nodes seal with a derived key: the config names a program, a seam stands in for it. */
const SEALING = { sealing: { snp: { keyCommand: SEAM_KEY_COMMAND } } };
const sealing = () => sealingSeams(fakeGuest({ measurement: MEASUREMENT }));

/** One member, so its vote decides: propose, vote, and insist the proposal was accepted. */
async function pass(gov: GovClient, name: string, args: unknown): Promise<void> {
  const proposal = await gov.propose({ actions: [{ name, args }] });
  const view = proposal.proposalState === "Open" ? await gov.vote(proposal.proposalId, YES) : proposal;
  assert.equal(view.proposalState, "Accepted", `${name}: ${JSON.stringify(view)}`);
}

/**
 * A fake kernel behind a temporary directory laid out like /sys/kernel/config/tsm/report: a new
 * entry holds `provider` (sev_guest) and `generation`; writing `inblob` bumps `generation` and
 * fills `outblob` with `answer(inblob)`. `requests` lists every inblob it was given.
 */
function simulatedTsm(answer: (inblob: Uint8Array) => Uint8Array) {
  const base = mkdtempSync(join(tmpdir(), "coco-tsm-"));
  const requests: Uint8Array[] = [];
  const fs: TsmFileSystem = {
    mkdir: async (path) => {
      await mkdir(path);
      await writeFile(join(path, "provider"), "sev_guest\n");
      await writeFile(join(path, "generation"), "0\n");
    },
    rmdir: (path) => rm(path, { recursive: true }),
    readFile: async (path) => new Uint8Array(await readFile(path)),
    writeFile: async (path, data) => {
      await writeFile(path, data);
      if (basename(path) !== "inblob") return;
      const inblob = new Uint8Array(Buffer.from(data as Uint8Array));
      requests.push(inblob);
      await writeFile(join(dirname(path), "outblob"), answer(inblob));
      const generation = join(dirname(path), "generation");
      await writeFile(generation, `${Number((await readFile(generation, "utf8")).trim()) + 1}\n`);
    },
  };
  return { base, fs, requests, entries: () => readdirSync(base) };
}

/**
 * Starts a joiner whose SNP reports come from `tsm` (its config names only the directory; the fake
 * kernel reaches it through runNode's in-process seam), as Cluster.join does otherwise.
 */
async function joinWithTsm(
  cluster: Cluster,
  name: string,
  target: RunningNode,
  tsm: ReturnType<typeof simulatedTsm>,
  chainFile: string,
): Promise<RunningNode> {
  return cluster.join(name, target, tsmAttestation(tsm, chainFile), {
    attestationSeams: { tsmFs: tsm.fs, ...sealing() },
  });
}

/** Settings for a node on SNP whose reports come from the simulated kernel `tsm`. */
function tsmAttestation(tsm: ReturnType<typeof simulatedTsm>, chainFile: string) {
  return {
    attestation: {
      platform: "snp",
      snp: { reportSource: { configfsTsm: tsm.base }, endorsements: { file: chainFile } },
    },
    ...SEALING,
  };
}

/**
 * The fake AMD's chain in a file, and simulated kernels to hand joiners: `signed()` makes one that
 * answers with reports for this guest signed by the fake VCEK, `kernel(tsm)` keeps any other for
 * `cleanup`, which removes the chain and every kernel's directory.
 */
function fakeAmdKernels(amd: FakeAmd) {
  const chainDir = mkdtempSync(join(tmpdir(), "coco-tsm-chain-"));
  const chainFile = join(chainDir, "chain.pem");
  writeFileSync(chainFile, amd.chainPem);
  const kernels: Array<ReturnType<typeof simulatedTsm>> = [];
  const kernel = (tsm: ReturnType<typeof simulatedTsm>) => {
    kernels.push(tsm);
    return tsm;
  };
  const signed = () =>
    kernel(
      simulatedTsm((inblob) =>
        fakeReport(amd.vcekKeyPem, { reportData: inblob, measurement: MEASUREMENT, hostData: HOST_DATA }),
      ),
    );
  const cleanup = () => {
    rmSync(chainDir, { recursive: true, force: true });
    for (const k of kernels) rmSync(k.base, { recursive: true, force: true });
  };
  return { chainFile, kernel, signed, cleanup };
}

/**
 * Member0 votes in this guest's host data and Milan's minimum TCB but not its measurement, so that
 * a joiner can be refused for the measurement alone; and n0 trusts the test's fake AMD, set
 * in-process since no configuration can reach it.
 */
async function allowAllButMeasurement(cluster: Cluster, n0: RunningNode, amd: FakeAmd): Promise<GovClient> {
  const gov = await cluster.gov(n0);
  await pass(gov, "add_snp_host_data", { host_data: HOST_DATA, security_policy: SECURITY_POLICY });
  await pass(gov, "set_snp_minimum_tcb_version_hex", {
    cpuid: "00a00f11",
    tcb_version: "db18000000000004",
  });
  n0.node.joinVerifier = new JoinVerifier({ trustedRoots: [amd.arkPem] });
  return gov;
}

function lines() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

test("SNP joins: real reports refused for the binding, policy voted in, fake-AMD nodes admitted and verifiable", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const amd = await makeFakeAmd();
  const guest = fakeSnpNodeFiles(amd, { measurement: MEASUREMENT, hostData: HOST_DATA });
  const snpSettings = {
    attestation: {
      platform: "snp",
      snp: { reportSource: { command: guest.command }, endorsements: { file: guest.chainFile } },
    },
    ...SEALING,
  };
  const attestations = async (node: RunningNode) =>
    (await cluster.call(node, "GET", "/node/attestations")).json().attestations as Array<{
      node_id: string;
      source: string | null;
      attestation: Record<string, unknown> | null;
    }>;
  try {
    // Stays Opening (no automatic opening), so an admitted joiner is trusted at once.
    const n0 = await cluster.startService({ openAtNodes: 0 });
    const serviceCert = `${cluster.dir}/service_cert.pem`;

    // The first node is virtual, and says so plainly.
    const self0 = (await cluster.call(n0, "GET", "/node/attestations/self")).json();
    assert.equal(self0.format, "virtual");
    assert.equal(self0.insecure, true);
    assert.match(self0.warning, /proves nothing/);
    assert.equal(self0.node_id, n0.node.nodeId);

    // Without the vectors these real-report checks are skipped (counted by test/vectors.test.ts);
    // COCO_REQUIRE_VECTORS=1 runs them regardless, so a missing vector fails instead.
    if (HAVE_VECTORS || process.env.COCO_REQUIRE_VECTORS === "1") {
      // (a) A real report and its real chain, sent as a joiner sends them: refused for the binding.
      const key = await newNodeKey("127.0.0.1");
      const encryption = generateEncryptionKey();
      const before = (await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes.length;
      // Without proof that it holds the node key, a request is refused before anything else: a
      // node's public key and attestation are public, so anyone could replay them with an
      // encryption key of their own to have the service's secrets wrapped to it.
      const substituted = await cluster.call(n0, "POST", "/node/join", {
        body: {
          node_public_key: key.publicKeyPem,
          certificate_signing_request: key.csrPem,
          encryption_public_key: generateEncryptionKey().publicKeyPem,
          encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
          rpc_address: "127.0.0.1:1",
          node_address: "127.0.0.1:2",
          attestation: { format: "virtual" },
        },
      });
      assert.equal(substituted.status, 400, substituted.text);
      assert.match(substituted.json().error.message, /encryption_key_signature/);
      const refused = await cluster.call(n0, "POST", "/node/join", {
        body: {
          node_public_key: key.publicKeyPem,
          certificate_signing_request: key.csrPem,
          encryption_public_key: encryption.publicKeyPem,
          encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
          rpc_address: "127.0.0.1:1",
          node_address: "127.0.0.1:2",
          attestation: {
            format: "snp",
            report: readFileSync(`${VECTORS}/ccf-milan/report.bin`).toString("base64"),
            endorsements: readFileSync(`${VECTORS}/ccf-milan/chain.pem`, "utf8"),
          },
        },
      });
      assert.equal(refused.status, 400, refused.text);
      const error = refused.json().error;
      assert.equal(error.code, "InvalidAttestation");
      assert.match(error.message, /report-data: the report does not bind the joining node's public key/);
      assert.doesNotMatch(error.message, /ark-trusted|report-signature/, "the real chain itself verifies");
      assert.equal((await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes.length, before);
      assert.equal((await attestations(n0)).length, before, "nothing recorded");

      // A joiner whose platform hands it that report refuses to send it: it cannot bind its key.
      const vector = `${VECTORS}/ccf-milan/report.bin`;
      await assert.rejects(
        cluster.join(
          "vector",
          n0,
          {
            attestation: {
              platform: "snp",
              snp: {
                reportSource: {
                  command: ["/bin/sh", "-c", 'cp "$0" "$1"', vector, "{report}", "{report-data}"],
                },
                endorsements: { file: `${VECTORS}/ccf-milan/chain.pem` },
              },
            },
            ...SEALING,
          },
          { attestationSeams: sealing() },
        ),
        /cannot attest this node for joining: .*returned a report for different report data/,
      );
    }

    // The tables hold host data and a minimum TCB, but not this guest's measurement.
    const gov = await allowAllButMeasurement(cluster, n0, amd);
    await assert.rejects(
      cluster.join("n1", n0, snpSettings, { attestationSeams: sealing() }),
      new RegExp(`join refused: .*measurement ${MEASUREMENT} is not among the 0 allowed SNP measurements`),
    );

    // Voted in, the measurement admits the next joiner.
    await pass(gov, "add_snp_measurement", { measurement: MEASUREMENT });
    const n2 = await cluster.join("n2", n0, snpSettings, { attestationSeams: sealing() });
    const recorded = (await attestations(n0)).find((a) => a.node_id === n2.node.nodeId);
    assert.equal(recorded?.source, "join");
    assert.equal(recorded?.attestation?.format, "snp");
    assert.equal(recorded?.attestation?.measurement, MEASUREMENT);
    assert.equal(recorded?.attestation?.host_data, HOST_DATA);
    assert.equal(recorded?.attestation?.report_data, `${n2.node.nodeId}${"00".repeat(32)}`);
    const first = (await attestations(n0)).find((a) => a.node_id === n0.node.nodeId);
    assert.equal(first?.source, "self");
    assert.equal(first?.attestation?.insecure, true);

    const self2 = (await cluster.call(n2, "GET", "/node/attestations/self")).json();
    assert.equal(self2.format, "snp");
    assert.equal(self2.insecure, false);
    assert.equal(self2.measurement, MEASUREMENT);

    // A client checks the SNP node against the key of its TLS connection.
    const ok = lines();
    const seams = { trustedRoots: [amd.arkPem] };
    assert.equal(
      await verifyNode(cluster.url(n2, ""), { serviceCert, measurement: MEASUREMENT }, ok.io, seams),
      0,
    );
    assert.match(ok.out.at(-1)!, /node attestation OK \(Milan\)/);
    const json = lines();
    assert.equal(await verifyNode(cluster.url(n2, ""), { serviceCert, json: true }, json.io, seams), 0);
    const verdict = JSON.parse(json.out[0]!);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.node_id, n2.node.nodeId);
    assert.ok(verdict.checks.some((c: { name: string; ok: boolean }) => c.name === "report-data" && c.ok));
    // Against AMD's real roots the fake chain is refused; a wrong measurement is refused too.
    const amdRoots = lines();
    assert.equal(await verifyNode(cluster.url(n2, ""), { serviceCert }, amdRoots.io), 1);
    assert.match(amdRoots.err.join("\n"), /INVALID: ark-trusted failed/);
    const wrong = lines();
    const other = { serviceCert, measurement: "00".repeat(48) };
    assert.equal(await verifyNode(cluster.url(n2, ""), other, wrong.io, seams), 1);
    assert.match(wrong.err.join("\n"), /measurement failed/);

    // The virtual node: insecure, refused unless explicitly allowed.
    const virtual = lines();
    assert.equal(await verifyNode(cluster.url(n0, ""), { serviceCert }, virtual.io), 1);
    assert.match(virtual.err.join("\n"), /INSECURE: .*refused: virtual/s);
    const allowed = lines();
    assert.equal(await verifyNode(cluster.url(n0, ""), { serviceCert, allowVirtual: true }, allowed.io), 0);
    const unreachable = lines();
    assert.equal(await verifyNode("https://127.0.0.1:1", { serviceCert }, unreachable.io), 2);
    assert.match(unreachable.err[0]!, /cannot get the attestation of https:\/\/127.0.0.1:1/);
  } finally {
    await cluster.stop();
    rmSync(guest.dir, { recursive: true, force: true });
  }
});

test("a first node on SNP attests itself and seeds the join policy; one that cannot attest does not start", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const amd = await makeFakeAmd();
  const { chainFile, signed, cleanup } = fakeAmdKernels(amd);
  try {
    // A node that cannot get its own report cannot start a service on SNP.
    await assert.rejects(
      cluster.startService(
        {
          attestation: {
            platform: "snp",
            snp: {
              reportSource: { command: ["/bin/false", "{report}", "{report-data}"] },
              endorsements: { file: "no-such-chain.pem" },
            },
          },
          ...SEALING,
        },
        { attestationSeams: sealing() },
      ),
      /cannot attest this node, so it cannot start a service on SEV-SNP/,
    );
    cluster.nodes.length = 0;

    // The first node attests through the simulated kernel; its report seeds the policy.
    const tsm0 = signed();
    const n0 = await cluster.startService(
      { openAtNodes: 0, ...tsmAttestation(tsm0, chainFile) },
      { attestationSeams: { tsmFs: tsm0.fs, ...sealing() } },
    );
    assert.equal(Buffer.from(tsm0.requests[0]!).toString("hex"), `${n0.node.nodeId}${"00".repeat(32)}`);
    const policy = (await cluster.call(n0, "GET", "/gov/service/join-policy?api-version=2024-07-01")).json();
    assert.deepEqual(policy.snp.measurements, [MEASUREMENT]);
    assert.deepEqual(Object.keys(policy.snp.hostData), [HOST_DATA]);
    assert.deepEqual(Object.keys(policy.snp.tcbVersions), ["00a00f11"]);
    const own = (await cluster.call(n0, "GET", "/node/attestations"))
      .json()
      .attestations.find((a: { node_id: string }) => a.node_id === n0.node.nodeId);
    assert.equal(own?.attestation?.format, "snp", "the first node's own attestation is on record");

    // An SNP node admits no virtual node, whatever the virtual table holds.
    await assert.rejects(
      cluster.join("virtual", n0),
      /join refused: this service runs on SEV-SNP and refuses virtual \(insecure\) attestations/,
    );
    // A node running the same code on the same platform joins with no vote at all.
    n0.node.joinVerifier = new JoinVerifier({ trustedRoots: [amd.arkPem] });
    const n1 = await joinWithTsm(cluster, "n1", n0, signed(), chainFile);
    assert.equal(
      (await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes.length,
      2,
      `${n1.node.nodeId} joined`,
    );
  } finally {
    await cluster.stop();
    cleanup();
  }
});

test("SNP joins through a simulated configfs-tsm: a real report refused, fake-AMD reports admitted once voted in", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const amd = await makeFakeAmd();
  const { chainFile, kernel, signed, cleanup } = fakeAmdKernels(amd);
  try {
    const n0 = await cluster.startService({ openAtNodes: 0 });
    const nodeCount = async () => (await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes.length;

    if (HAVE_VECTORS || process.env.COCO_REQUIRE_VECTORS === "1") {
      // The kernel hands back a real report, whatever was asked: the joiner refuses to send it.
      const vector = new Uint8Array(readFileSync(`${VECTORS}/ccf-milan/report.bin`));
      const real = kernel(simulatedTsm(() => vector));
      await assert.rejects(
        joinWithTsm(cluster, "vector", n0, real, `${VECTORS}/ccf-milan/chain.pem`),
        /cannot attest this node for joining: configfs-tsm returned a report for different report data/,
      );
      assert.equal(real.requests.length, 1, "the joiner asked the simulated kernel");
      assert.deepEqual(real.entries(), [], "the report entry is removed on failure too");
      assert.equal(await nodeCount(), 1);
    }

    const gov = await allowAllButMeasurement(cluster, n0, amd);

    // Before the measurement is voted in, the same kind of joiner is refused for it alone.
    const early = signed();
    await assert.rejects(
      joinWithTsm(cluster, "early", n0, early, chainFile),
      new RegExp(`join refused: .*measurement ${MEASUREMENT} is not among the 0 allowed SNP measurements`),
    );
    assert.equal(early.requests.length, 1);
    assert.equal(await nodeCount(), 1, "nothing recorded");

    await pass(gov, "add_snp_measurement", { measurement: MEASUREMENT });
    const tsm = signed();
    const n1 = await joinWithTsm(cluster, "n1", n0, tsm, chainFile);
    const bound = `${n1.node.nodeId}${"00".repeat(32)}`;
    assert.equal(Buffer.from(tsm.requests[0]!).toString("hex"), bound, "inblob binds the joiner's key");
    const recorded = (await cluster.call(n0, "GET", "/node/attestations"))
      .json()
      .attestations.find((a: { node_id: string }) => a.node_id === n1.node.nodeId);
    assert.equal(recorded?.source, "join");
    assert.equal(recorded?.attestation?.format, "snp");
    assert.equal(recorded?.attestation?.measurement, MEASUREMENT);
    assert.equal(recorded?.attestation?.report_data, bound);

    // The joiner's own endpoint attests through the same simulated kernel (the seam reaches it).
    const self1 = await cluster.call(n1, "GET", "/node/attestations/self");
    assert.equal(self1.status, 200, self1.text);
    const view = self1.json();
    assert.equal(view.node_id, n1.node.nodeId);
    assert.equal(view.format, "snp");
    assert.equal(view.insecure, false);
    assert.equal(view.measurement, MEASUREMENT);
    assert.equal(view.host_data, HOST_DATA);
    assert.equal(view.report_data, bound);
    assert.ok(tsm.requests.length >= 2, "the self attestation was asked of the simulated kernel");
    assert.deepEqual(tsm.entries(), [], "every report entry was removed");
    const ok = lines();
    const serviceCert = `${cluster.dir}/service_cert.pem`;
    assert.equal(
      await verifyNode(cluster.url(n1, ""), { serviceCert, measurement: MEASUREMENT }, ok.io, {
        trustedRoots: [amd.arkPem],
      }),
      0,
      ok.err.join("\n"),
    );
  } finally {
    await cluster.stop();
    cleanup();
  }
});
