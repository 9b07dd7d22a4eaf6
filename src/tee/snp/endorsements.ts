import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { derToPem, loadCert, splitPem } from "./certs.ts";
import { SnpError } from "./errors.ts";
import type { SnpProduct, SnpReport } from "./report.ts";

/** AMD's Key Distribution Service; any server with the same paths will do (a caching proxy). */
export const AMD_KDS = "https://kdsintf.amd.com";
const MAX_BODY = 1 << 20;

export interface SnpEndorsementOptions {
  /** A PEM file holding the VCEK (or VLEK), the ASK (or ASVK) and the ARK. */
  pemFile?: string;
  /** A folder whose *.pem files, together, hold that chain. */
  pemDir?: string;
  /** A KDS-compatible base URL, e.g. https://kdsintf.amd.com. */
  kdsUrl?: string;
  /** Where fetched chains are kept, keyed by product, chip and TCB. */
  cacheDir?: string;
  /** Needed for v2 reports, which do not name their CPU. */
  product?: SnpProduct;
  timeoutMs?: number;
}

export interface SnpEndorsements {
  /** VCEK, ASK and ARK as one PEM text, ready for verifySnpReport({ chain }). */
  chainPem: string;
  source: "file" | "dir" | "cache" | "kds";
  /** The VCEK URL asked (kds and cache sources). */
  vcekUrl?: string;
}

function fail(message: string): never {
  throw new SnpError("endorsements-failed", message);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    return fail(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** GETs `url`; refuses non-200 answers and oversized bodies with a message naming the URL. */
async function get(url: string, timeoutMs: number): Promise<Uint8Array> {
  let response: Awaited<ReturnType<typeof import("undici").request>>;
  try {
    // Loaded here: only an SNP node fetches endorsements, and undici costs every start ~0.2 s CPU.
    const { request } = await import("undici");
    response = await request(url, { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (e) {
    return fail(`cannot reach ${url}: ${(e as Error).message}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      response.body.destroy();
      fail(`${url} answered more than ${MAX_BODY} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  if (response.statusCode !== 200) {
    const hint = response.statusCode === 429 ? " (rate limited: retry later or use a cache)" : "";
    fail(`${url} answered HTTP ${response.statusCode}${hint}: ${body.toString("utf8").slice(0, 200)}`);
  }
  return new Uint8Array(body);
}

/** The KDS hardware ID: all 64 bytes of CHIP_ID, or the first 8 on Turin. */
function hwid(report: SnpReport, product: SnpProduct): string {
  if (report.chipIdMasked) {
    fail("CHIP_ID is masked (all zero), so the VCEK cannot be looked up: supply the chain as a file");
  }
  return product === "Turin" ? report.chipId.slice(0, 16) : report.chipId;
}

/** The KDS URL of the VCEK for this report's chip and REPORTED_TCB. */
export function vcekUrl(base: string, product: SnpProduct, report: SnpReport): string {
  const t = report.reportedTcb;
  const two = (n: number) => String(n).padStart(2, "0");
  const params = [
    ...(product === "Turin" ? [`fmcSPL=${two(t.fmc ?? 0)}`] : []),
    `blSPL=${two(t.bootloader)}`,
    `teeSPL=${two(t.tee)}`,
    `snpSPL=${two(t.snp)}`,
    `ucodeSPL=${two(t.microcode)}`,
  ];
  return `${base.replace(/\/+$/, "")}/vcek/v1/${product}/${hwid(report, product)}?${params.join("&")}`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function fromKds(
  report: SnpReport,
  product: SnpProduct,
  options: SnpEndorsementOptions & { kdsUrl: string },
) {
  if (report.signingKey === "vlek") {
    fail(
      "the report is signed with a VLEK, which AMD's KDS does not serve publicly: supply the chain as a file",
    );
  }
  const url = vcekUrl(options.kdsUrl, product, report);
  const key = `${product}-${hwid(report, product)}-${report.reportedTcb.hex}.pem`;
  const cached = options.cacheDir ? join(options.cacheDir, key) : undefined;
  if (cached) {
    const text = await readFile(cached, "utf8").catch(() => undefined);
    if (text !== undefined && splitPem(text, `cached chain ${cached}`).length === 3) {
      return { chainPem: text, source: "cache" as const, vcekUrl: url };
    }
  }
  const timeout = options.timeoutMs ?? 30_000;
  const vcekDer = await get(url, timeout);
  try {
    loadCert(vcekDer, `VCEK from ${url}`);
  } catch (e) {
    fail(`${url} did not answer a DER certificate: ${(e as Error).message}`);
  }
  const chainUrl = `${options.kdsUrl.replace(/\/+$/, "")}/vcek/v1/${product}/cert_chain`;
  const caText = Buffer.from(await get(chainUrl, timeout)).toString("utf8");
  let ca: Uint8Array[];
  try {
    ca = splitPem(caText, `cert_chain from ${chainUrl}`);
    for (const [i, der] of ca.entries()) loadCert(der, `cert_chain certificate ${i + 1}`);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (ca.length !== 2) fail(`${chainUrl} answered ${ca.length} certificates, expected the ASK and the ARK`);
  const chainPem = [vcekDer, ...ca].map((d) => derToPem(d)).join("");
  if (cached && options.cacheDir) {
    await mkdir(options.cacheDir, { recursive: true });
    await writeAtomic(cached, chainPem);
  }
  return { chainPem, source: "kds" as const, vcekUrl: url };
}

/**
 * Finds the certificates that endorse `report`: from a configured PEM file or folder, else from
 * the disk cache, else from a KDS-compatible server (then cached). The chain is not verified
 * here; verifySnpReport does that against the bundled AMD roots.
 */
export async function fetchSnpEndorsements(
  report: SnpReport,
  options: SnpEndorsementOptions,
): Promise<SnpEndorsements> {
  if (options.pemFile) {
    const text = await readText(options.pemFile, "endorsement file");
    if (splitPem(text, options.pemFile).length === 0) fail(`${options.pemFile} holds no certificate`);
    return { chainPem: text, source: "file" };
  }
  if (options.pemDir) {
    const dir = options.pemDir;
    const names = await readdir(dir).catch((e: Error) =>
      fail(`cannot read endorsement folder ${dir}: ${e.message}`),
    );
    const pems = names.filter((n) => n.endsWith(".pem")).sort();
    if (pems.length === 0) fail(`endorsement folder ${dir} has no .pem files`);
    const texts = await Promise.all(pems.map((n) => readText(join(dir, n), "endorsement file")));
    return { chainPem: texts.join("\n"), source: "dir" };
  }
  if (options.kdsUrl) {
    const product = options.product ?? report.cpuidProduct;
    if (!product)
      fail(`a v${report.version} report does not name its CPU: configure the product to fetch its VCEK`);
    return fromKds(report, product, { ...options, kdsUrl: options.kdsUrl });
  }
  return fail("no endorsement source configured: give a PEM file, a PEM folder or a KDS URL");
}
