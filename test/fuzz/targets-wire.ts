import { existsSync, readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { Raft } from "../../src/consensus/index.ts";
import { certFingerprint, createIdentityCertificate } from "../../src/crypto/index.ts";
import { GovRequestError, signGovRequest, verifyGovRequest } from "../../src/gov/index.ts";
import { decodeEnvelope, encodeEnvelope } from "../../src/net/envelope.ts";
import { NetError } from "../../src/net/errors.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";
import { ConfigError, parseConfig } from "../../src/node/config.ts";
import { newNodeKey } from "../../src/node/identity.ts";
import {
  checkJoinProof,
  generateEncryptionKey,
  JoinError,
  parseJoinRequest,
  signJoinProof,
} from "../../src/node/join.ts";
import { parseCertTable, parseSnpReport, SnpError, verifySnpReport } from "../../src/tee/index.ts";
import { makeFakeAmd } from "../tee/fake-amd.ts";
import { fakeReport } from "../tee/fake-report.ts";
import { clearly, type FuzzTarget, Tally } from "./harness.ts";
import { mutated, mutatedJson } from "./mutate.ts";

/** Parsers of bytes from peers, members, joiners, AMD and operators. */

const text = new TextEncoder();
const VECTORS = new URL("../../../shared/vectors/snp/", import.meta.url);

/** Node-to-node frames: a raw stream cut into frames, each decoded and handed to Raft. */
function netTarget(): FuzzTarget<Uint8Array[]> {
  const tally = new Tally();
  const entry = { seqno: 5, view: 2, isSignature: true, data: new Uint8Array([1, 2, 3]) };
  const envelopes = [
    { kind: "hello", version: 1 },
    {
      kind: "msg",
      body: {
        type: "append_entries",
        from: "b",
        to: "a",
        view: 2,
        prevSeqno: 4,
        prevView: 1,
        commitSeqno: 3,
        entries: [entry],
      },
    },
    {
      kind: "msg",
      body: { type: "request_vote", from: "c", to: "a", view: 3, lastSeqno: 9, lastView: 2, handover: false },
    },
    { kind: "msg", body: { type: "heartbeat", from: "b", to: "a", view: 2, commitSeqno: 3, round: 7 } },
    { kind: "req", id: 7, body: { method: "POST", url: "/app/log", headers: {}, body: new Uint8Array(8) } },
    { kind: "res", id: 7, error: "no" },
  ] as const;
  const stream = Buffer.concat(envelopes.map((e) => encodeFrame(encodeEnvelope(e as never))));
  const payloads = envelopes.map((e) => encodeEnvelope(e as never));
  return {
    name: "node-frames",
    parser:
      "src/net frame.ts FrameDecoder + envelope.ts decodeEnvelope, then Raft.step (src/consensus validate.ts)",
    tally,
    input: fc
      .tuple(
        fc.oneof(
          mutated([new Uint8Array(stream)]),
          mutated(payloads).map((p) => new Uint8Array(encodeFrame(p.length ? p : new Uint8Array(1)))),
        ),
        fc.array(fc.nat({ max: 4096 }), { maxLength: 6 }),
      )
      .map(([bytes, cuts]) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        let last = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(last, p));
          last = p;
        }
        return chunks;
      }),
    check(chunks) {
      const raft = new Raft({
        id: "a",
        random: () => 0.5,
        log: { start: { seqno: 0, view: 0, config: ["a", "b", "c"] }, entries: [] },
      });
      const decoder = new FrameDecoder(1 << 20);
      clearly(tally, [NetError], () => {
        for (const chunk of chunks) {
          for (const payload of decoder.push(chunk)) {
            const envelope = decodeEnvelope(payload);
            // Raft never throws on bad input: it counts and drops it.
            if (envelope.kind === "msg") raft.step(envelope.body);
          }
        }
      });
      raft.ready();
    },
  };
}

/** Raft messages as JSON-like values: damaged versions of good ones, and anything at all. */
function raftTarget(): FuzzTarget<unknown> {
  const tally = new Tally();
  const good = [
    {
      type: "append_entries",
      from: "b",
      to: "a",
      view: 2,
      prevSeqno: 0,
      prevView: 0,
      commitSeqno: 0,
      entries: [{ seqno: 1, view: 2, isSignature: true, data: "AQID" }],
    },
    { type: "request_vote", from: "c", to: "a", view: 3, lastSeqno: 9, lastView: 2, handover: false },
    { type: "pre_vote", from: "c", to: "a", view: 3, lastSeqno: 9, lastView: 2 },
    {
      type: "append_entries_response",
      from: "b",
      to: "a",
      view: 1,
      success: true,
      matchSeqno: 1,
      durableSeqno: 1,
      lastSeqno: 1,
    },
  ];
  return {
    name: "raft-messages",
    parser: "src/consensus Raft.step (validate.ts parseMessage) as a node hands it decoded frames",
    tally,
    input: mutatedJson(good),
    check(message) {
      const raft = new Raft({
        id: "a",
        random: () => 0.5,
        log: { start: { seqno: 0, view: 0, config: ["a", "b", "c"] }, entries: [] },
      });
      clearly(tally, [], () => {
        raft.step(message);
        raft.tick();
        raft.ready();
      });
      // Raft drops what it cannot use without throwing; it counts what was malformed.
      tally.refused += raft.stats.invalidMessages;
    },
  };
}

async function govTarget(): Promise<FuzzTarget<Uint8Array>> {
  const tally = new Tally();
  const member = await createIdentityCertificate({
    name: "member0",
    now: new Date("2025-01-01T00:00:00Z"),
    serial: Uint8Array.of(3),
  });
  const now = 1_760_000_000;
  const id = certFingerprint(member.certPem);
  const proposal = text.encode(JSON.stringify({ actions: [{ name: "set_user", args: { cert: "x" } }] }));
  const ballot = text.encode('{"ballot":"export function vote() { return true }"}');
  const signed = { keyPem: member.privateKeyPem, certPem: member.certPem, createdAt: now };
  const samples = [
    signGovRequest({ ...signed, type: "proposal", payload: proposal }),
    signGovRequest({ ...signed, type: "ballot", proposalId: "a".repeat(64), payload: ballot }),
    signGovRequest({ ...signed, type: "withdrawal", proposalId: "b".repeat(64), payload: new Uint8Array() }),
  ];
  // What the member signed: a request that still verifies after damage must say exactly this.
  const genuine = new Set([`proposal:${hex(proposal)}`, `ballot:${hex(ballot)}`, "withdrawal:"]);
  return {
    name: "gov-cose",
    parser: "src/gov verify-request.ts verifyGovRequest (COSE_Sign1 from members)",
    tally,
    input: mutated(samples),
    check(bytes) {
      for (const expectedType of ["proposal", "ballot", "withdrawal"] as const) {
        const verified = clearly(tally, [GovRequestError], () =>
          verifyGovRequest(bytes, {
            expectedType,
            now,
            lookupMemberCert: (kid) => (kid === id ? member.certPem : undefined),
          }),
        );
        if (verified && !genuine.has(`${verified.type}:${hex(verified.payload)}`)) {
          throw new Error("a damaged governance request verified with content the member never signed");
        }
      }
    },
  };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function configTarget(): FuzzTarget<unknown> {
  const tally = new Tally();
  const good = [
    {
      dir: "node0",
      rpc: { address: "127.0.0.1:8000" },
      nodeAddress: "127.0.0.1:8001",
      members: [{ cert: "m.pem" }],
      users: [{ cert: "u.pem" }],
      openAtNodes: 1,
      app: "logging",
      log: { level: "info" },
      snapshots: { txInterval: 100 },
    },
    {
      dir: "n1",
      rpc: { address: "127.0.0.1:0" },
      nodeAddress: "127.0.0.1:8002",
      join: { target: "127.0.0.1:8000", serviceCertFile: "service_cert.pem" },
    },
    { dir: "n2", consensus: { tickMs: 50, electionTicksMin: 10, electionTicksMax: 20 } },
  ];
  return {
    name: "config",
    parser: "src/node/config.ts parseConfig (what `coco start|join|recover --config` reads)",
    tally,
    input: mutatedJson(good),
    check(raw) {
      clearly(tally, [ConfigError], () => parseConfig(raw, "/nonexistent/coco-fuzz"));
    },
  };
}

async function joinTarget(): Promise<FuzzTarget<unknown>> {
  const tally = new Tally();
  const key = await newNodeKey("127.0.0.1");
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
  const fields = Object.keys(valid).filter((k) => k !== "attestation") as Array<keyof typeof valid>;
  // Damage inside the PEM texts too, where JSON-level edits do not reach.
  const textDamage = fc
    .tuple(fc.constantFrom(...fields), mutated(fields.map((f) => text.encode(valid[f] as string))))
    .map(([field, bytes]) => ({ ...valid, [field]: Buffer.from(bytes).toString("latin1") }));
  return {
    name: "join-request",
    parser: "src/node/join.ts parseJoinRequest + checkJoinProof (POST /node/join bodies)",
    tally,
    input: fc.oneof(mutatedJson([valid]), textDamage),
    check(body) {
      clearly(tally, [JoinError], () => checkJoinProof(parseJoinRequest(body)));
    },
  };
}

async function snpTargets(): Promise<FuzzTarget<never>[]> {
  const amd = await makeFakeAmd();
  const fields = {
    reportData: new Uint8Array(64).fill(1),
    measurement: "ab".repeat(48),
    hostData: "cd".repeat(32),
  };
  const reports = [fakeReport(amd.vcekKeyPem, fields)];
  const chains = [amd.chainPem];
  if (existsSync(VECTORS)) {
    for (const name of readdirSync(VECTORS).sort()) {
      const dir = new URL(`${name}/`, VECTORS);
      if (existsSync(new URL("report.bin", dir)))
        reports.push(new Uint8Array(readFileSync(new URL("report.bin", dir))));
      if (existsSync(new URL("chain.pem", dir))) chains.push(readFileSync(new URL("chain.pem", dir), "utf8"));
    }
  }
  const signedPart = (b: Uint8Array) => Buffer.from(b.subarray(0, 0x2a0)).toString("hex");
  const originals = new Set(reports.map(signedPart));
  const reportTally = new Tally();
  const report: FuzzTarget<Uint8Array> = {
    name: "snp-report",
    parser:
      "src/tee/snp report.ts parseSnpReport + verify.ts verifySnpReport (fake AMD chain and the vectors)",
    tally: reportTally,
    input: mutated(reports),
    check(bytes) {
      const parsed = clearly(reportTally, [SnpError], () => parseSnpReport(bytes));
      if (!parsed) return;
      const result = clearly(reportTally, [SnpError], () =>
        verifySnpReport(parsed, {
          chain: amd.chainPem,
          trustedRoots: [amd.arkPem],
          now: Date.parse("2026-01-01T00:00:00Z"),
        }),
      );
      if (result?.ok && !originals.has(signedPart(bytes))) throw new Error("a damaged SNP report verified");
      if (result && !result.ok) reportTally.refused++;
    },
  };
  const chainTally = new Tally();
  const chain: FuzzTarget<Uint8Array> = {
    name: "snp-chain",
    parser:
      "src/tee/snp certs.ts via verifySnpReport's chain (damaged PEM text) and certtable.ts parseCertTable",
    tally: chainTally,
    input: mutated(chains.map((c) => text.encode(c))),
    check(bytes) {
      const pem = Buffer.from(bytes).toString("latin1");
      const result = clearly(chainTally, [SnpError], () =>
        verifySnpReport(reports[0]!, {
          chain: pem,
          trustedRoots: [amd.arkPem],
          now: Date.parse("2026-01-01T00:00:00Z"),
        }),
      );
      if (result && !result.ok) chainTally.refused++;
      clearly(chainTally, [SnpError], () => parseCertTable(bytes));
    },
  };
  return [report, chain] as FuzzTarget<never>[];
}

export async function wireTargets(): Promise<FuzzTarget<never>[]> {
  return [
    netTarget(),
    raftTarget(),
    await govTarget(),
    configTarget(),
    await joinTarget(),
    ...(await snpTargets()),
  ] as FuzzTarget<never>[];
}
