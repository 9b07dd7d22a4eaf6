// `coco attestation verify-node`: asks a running node for its attestation and checks it against
// the TLS key that node presented on the very connection the answer came over.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import type { TLSSocket } from "node:tls";
import { parseSnpEvidence, snpReportFields, VIRTUAL_WARNING, verifySnpReport } from "../tee/index.ts";
import { describeReport, EXIT_INVALID, EXIT_USAGE, EXIT_VALID } from "./attestation.ts";

export interface VerifyNodeOptions {
  serviceCert: string;
  measurement?: string;
  json?: boolean;
  allowVirtual?: boolean;
}

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** In-process only (tests): AMD roots to trust instead of the bundled ones, and the time. */
export interface VerifyNodeSeams {
  trustedRoots?: string[];
  now?: number;
}

class UsageError extends Error {}

/** One named check with its outcome, as `coco attestation verify` prints them. */
interface Check {
  name: string;
  ok: boolean;
  skipped?: boolean;
  detail: string;
}

const TIMEOUT_MS = 30_000;
const MAX_ANSWER = 1 << 20;

function nodeUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new UsageError(`${JSON.stringify(text)} is not a node address (https://host:port)`);
  }
  if (url.protocol !== "https:") throw new UsageError(`${text}: nodes are reached over https`);
  return url;
}

/** GETs the node's own attestation and the DER of the certificate it presented for that answer. */
function fetchSelf(url: URL, ca: string): Promise<{ answer: Record<string, unknown>; peerDer: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || 443,
        path: "/node/attestations/self",
        method: "GET",
        ca,
        agent: false,
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const peerDer = (res.socket as TLSSocket).getPeerCertificate().raw;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER) req.destroy(new Error(`the answer is larger than ${MAX_ANSWER} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let answer: unknown;
          try {
            answer = JSON.parse(text);
          } catch {
            return reject(
              new Error(`the node answered HTTP ${res.statusCode} with no JSON: ${text.slice(0, 200)}`),
            );
          }
          if (res.statusCode !== 200) {
            const error = (answer as { error?: { message?: string } }).error;
            return reject(
              new Error(`the node answered HTTP ${res.statusCode}: ${error?.message ?? text.slice(0, 200)}`),
            );
          }
          if (typeof answer !== "object" || answer === null || !peerDer) {
            return reject(new Error("the node's answer is not an attestation"));
          }
          resolve({ answer: answer as Record<string, unknown>, peerDer });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function hexOf(text: string, bytes: number, what: string): string {
  const clean = text.trim().toLowerCase().replace(/^0x/, "");
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(clean)) {
    throw new UsageError(`${what} must be ${bytes} bytes of hex (${bytes * 2} digits)`);
  }
  return clean;
}

function checkLine(c: Check): string {
  return `  ${c.skipped ? "skip" : c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`;
}

/**
 * `coco attestation verify-node <url>`: exit 0 when the node's attestation verifies and binds the
 * key of the TLS connection it came over, 1 when it does not (or is virtual, unless allowed),
 * 2 when the node cannot be asked or an option is malformed.
 */
export async function verifyNode(
  target: string,
  opts: VerifyNodeOptions,
  io: Io,
  seams: VerifyNodeSeams = {},
): Promise<number> {
  try {
    const url = nodeUrl(target);
    let ca: string;
    try {
      ca = readFileSync(opts.serviceCert, "utf8");
    } catch (e) {
      throw new UsageError(
        `cannot read the service certificate ${opts.serviceCert}: ${(e as Error).message}`,
      );
    }
    let fetched: Awaited<ReturnType<typeof fetchSelf>>;
    try {
      fetched = await fetchSelf(url, ca);
    } catch (e) {
      throw new UsageError(`cannot get the attestation of ${url.origin}: ${(e as Error).message}`);
    }
    const { answer, peerDer } = fetched;
    const spki = new X509Certificate(peerDer).publicKey.export({ type: "spki", format: "der" });
    const keyDigest = createHash("sha256").update(spki).digest();
    const nodeId = keyDigest.toString("hex");
    const expectedData = Buffer.concat([keyDigest, Buffer.alloc(32)]);
    const checks: Check[] = [];
    const idOk = answer.node_id === nodeId;
    checks.push({
      name: "node-id",
      ok: idOk,
      detail: idOk
        ? `the answer names node ${nodeId}, the key of this TLS connection`
        : `the answer names node ${String(answer.node_id)}, but the TLS key is node ${nodeId}`,
    });

    if (answer.format === "virtual") {
      const measurement = opts.measurement && hexOf(opts.measurement, 32, "--measurement");
      const bound = answer.report_data === nodeId;
      checks.push({
        name: "report-data",
        ok: bound,
        detail: bound ? "report data binds the TLS key" : "report data does not bind the TLS key",
      });
      if (measurement) {
        const ok = answer.measurement === measurement;
        checks.push({ name: "measurement", ok, detail: `measurement ${String(answer.measurement)}` });
      }
      const valid = checks.every((c) => c.ok);
      const accepted = valid && opts.allowVirtual === true;
      if (opts.json) {
        io.out(
          JSON.stringify({
            url: url.origin,
            node_id: nodeId,
            format: "virtual",
            insecure: true,
            ok: accepted,
            checks,
          }),
        );
      } else {
        io.out(`node:             ${nodeId} at ${url.origin}`);
        io.out("platform:         virtual");
        io.out(`measurement:      ${String(answer.measurement)}`);
        io.out("checks:");
        for (const c of checks) io.out(checkLine(c));
        io.err(`INSECURE: ${VIRTUAL_WARNING}`);
        if (!valid) io.err("node attestation INVALID");
        else if (!accepted)
          io.err("node attestation refused: virtual (pass --allow-virtual to accept a development node)");
        else io.out("node attestation accepted as virtual (--allow-virtual): it proves nothing");
      }
      return accepted ? EXIT_VALID : EXIT_INVALID;
    }
    if (answer.format !== "snp") {
      throw new UsageError(
        `the node answered an unknown attestation format ${JSON.stringify(answer.format)}`,
      );
    }

    const measurement = opts.measurement && hexOf(opts.measurement, 48, "--measurement");
    let evidence: ReturnType<typeof parseSnpEvidence>;
    try {
      evidence = parseSnpEvidence(answer);
    } catch (e) {
      throw new UsageError(`the node's SNP attestation cannot be read: ${(e as Error).message}`);
    }
    const result = verifySnpReport(evidence.bytes, {
      chain: evidence.endorsements,
      now: seams.now ?? Date.now(),
      expectedReportData: expectedData,
      ...(measurement ? { expectedMeasurement: measurement } : {}),
      ...(seams.trustedRoots ? { trustedRoots: seams.trustedRoots } : {}),
    });
    const policy = evidence.report.policy;
    const guestOk = !policy.debugAllowed && !policy.migrateMaAllowed;
    const all: Check[] = [
      ...checks,
      ...result.checks,
      {
        name: "guest-policy",
        ok: guestOk,
        detail: guestOk
          ? "guest policy allows neither debugging nor a migration agent"
          : `guest policy allows ${policy.debugAllowed ? "debugging (the host can read guest memory)" : "a migration agent"}`,
      },
    ];
    const ok = all.every((c) => c.ok);
    if (opts.json) {
      io.out(
        JSON.stringify({
          url: url.origin,
          node_id: nodeId,
          format: "snp",
          insecure: false,
          ok,
          product: result.product ?? null,
          checks: all,
          report: snpReportFields(evidence.report),
        }),
      );
    } else {
      io.out(`node:             ${nodeId} at ${url.origin}`);
      io.out("platform:         snp");
      for (const line of describeReport(evidence.report)) io.out(line);
      io.out("checks:");
      for (const c of all) io.out(checkLine(c));
      if (ok) io.out(`node attestation OK${result.product ? ` (${result.product})` : ""}`);
      else
        io.err(
          `node attestation INVALID: ${all
            .filter((c) => !c.ok)
            .map((c) => c.name)
            .join(", ")} failed`,
        );
    }
    return ok ? EXIT_VALID : EXIT_INVALID;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`coco attestation verify-node: ${e.message}`);
    return EXIT_USAGE;
  }
}
