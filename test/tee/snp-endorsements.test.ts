// Endorsements from files and from a KDS-compatible server on 127.0.0.1 serving the vectors.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  fetchSnpEndorsements,
  parseSnpReport,
  SnpError,
  vcekUrl,
  verifySnpReport,
} from "../../src/tee/index.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const ROOT = mkdtempSync(join(tmpdir(), "coco-snp-endorse-"));
after(() => rmSync(ROOT, { recursive: true, force: true }));
const NOW = Date.parse("2026-01-01T00:00:00Z");

function vector(name: string) {
  const chain = readFileSync(`${VECTORS}/${name}/chain.pem`, "utf8");
  const pems = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
  const report = parseSnpReport(new Uint8Array(readFileSync(`${VECTORS}/${name}/report.bin`)));
  const vcekDer = Buffer.from(pems[0]!.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
  return { chain, report, vcekDer, caPem: pems[1]! + pems[2]! };
}

/** A KDS stand-in: serves each vector's VCEK (DER) and cert_chain (PEM); counts requests. */
async function kds(opts: { fail?: number } = {}) {
  const requests: string[] = [];
  const routes = new Map<string, { type: string; body: Buffer | string }>();
  for (const name of ["ccf-milan", "ccf-genoa"]) {
    const v = vector(name);
    const product = v.report.cpuidProduct!;
    routes.set(
      new URL(vcekUrl("http://x", product, v.report)).pathname +
        new URL(vcekUrl("http://x", product, v.report)).search,
      {
        type: "application/pkix-cert",
        body: v.vcekDer,
      },
    );
    routes.set(`/vcek/v1/${product}/cert_chain`, { type: "application/x-pem-file", body: v.caPem });
  }
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const route = routes.get(req.url ?? "");
    if (opts.fail) {
      res.writeHead(opts.fail).end("KDS is down");
      return;
    }
    if (!route) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": route.type }).end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test("the VCEK URL names the product, the chip and the four SPLs (and FMC and 8-byte hwID on Turin)", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const { report } = vector("ccf-milan");
  assert.equal(
    vcekUrl("https://kdsintf.amd.com/", "Milan", report),
    `https://kdsintf.amd.com/vcek/v1/Milan/${report.chipId}?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219`,
  );
  const turin = { ...report, reportedTcb: { ...report.reportedTcb, fmc: 3 } };
  assert.equal(
    vcekUrl("https://kds", "Turin", turin),
    `https://kds/vcek/v1/Turin/${report.chipId.slice(0, 16)}?fmcSPL=03&blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219`,
  );
});

test("KDS: fetched once, then served from the disk cache", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const server = await kds();
  try {
    const cacheDir = join(ROOT, "cache");
    for (const name of ["ccf-milan", "ccf-genoa"]) {
      const { report } = vector(name);
      const first = await fetchSnpEndorsements(report, { kdsUrl: server.url, cacheDir });
      assert.equal(first.source, "kds");
      assert.equal(verifySnpReport(report, { chain: first.chainPem, now: NOW }).ok, true, name);
      const before = server.requests.length;
      const second = await fetchSnpEndorsements(report, { kdsUrl: server.url, cacheDir });
      assert.equal(second.source, "cache");
      assert.equal(second.chainPem, first.chainPem);
      assert.equal(server.requests.length, before, "the server is not asked again");
    }
    assert.equal(server.requests.length, 4);
    assert.equal(readdirSync(join(ROOT, "cache")).length, 2, "one cache entry per product, chip and TCB");
  } finally {
    await server.close();
  }
});

test("KDS: server errors and unknown chips are clear errors that cache nothing", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const { report } = vector("ccf-milan");
  const cacheDir = join(ROOT, "cache-errors");
  const down = await kds({ fail: 500 });
  try {
    await assert.rejects(
      fetchSnpEndorsements(report, { kdsUrl: down.url, cacheDir }),
      (e) =>
        e instanceof SnpError &&
        e.code === "endorsements-failed" &&
        /answered HTTP 500: KDS is down/.test(e.message),
    );
  } finally {
    await down.close();
  }
  const limited = await kds({ fail: 429 });
  try {
    await assert.rejects(fetchSnpEndorsements(report, { kdsUrl: limited.url }), /rate limited/);
  } finally {
    await limited.close();
  }
  const up = await kds();
  try {
    const other = { ...report, chipId: "ee".repeat(64) };
    await assert.rejects(fetchSnpEndorsements(other, { kdsUrl: up.url, cacheDir }), /HTTP 404/);
  } finally {
    await up.close();
  }
  assert.equal(existsSync(cacheDir) ? readdirSync(cacheDir).length : 0, 0);
  await assert.rejects(fetchSnpEndorsements(report, { kdsUrl: "http://127.0.0.1:1" }), /cannot reach/);
});

test("KDS needs what it cannot guess: the product of a v2 report, an unmasked chip, a VCEK", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v2 = vector("virtee-milan").report;
  await assert.rejects(fetchSnpEndorsements(v2, { kdsUrl: "http://127.0.0.1:1" }), /does not name its CPU/);
  const { report } = vector("ccf-milan");
  await assert.rejects(
    fetchSnpEndorsements({ ...report, chipIdMasked: true }, { kdsUrl: "http://x" }),
    /CHIP_ID is masked/,
  );
  await assert.rejects(
    fetchSnpEndorsements({ ...report, signingKey: "vlek" }, { kdsUrl: "http://x" }),
    /VLEK/,
  );
  await assert.rejects(fetchSnpEndorsements(report, {}), /no endorsement source configured/);
});

test("a configured PEM file or folder is used as is", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const { report, chain } = vector("ccf-genoa");
  const fromFile = await fetchSnpEndorsements(report, { pemFile: `${VECTORS}/ccf-genoa/chain.pem` });
  assert.equal(fromFile.source, "file");
  assert.equal(fromFile.chainPem, chain);
  const dir = mkdtempSync(join(ROOT, "pems-"));
  const pems = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
  writeFileSync(join(dir, "ark.pem"), pems[2]!);
  writeFileSync(join(dir, "ask.pem"), pems[1]!);
  writeFileSync(join(dir, "vcek.pem"), pems[0]!);
  writeFileSync(join(dir, "notes.txt"), "ignored");
  const fromDir = await fetchSnpEndorsements(report, { pemDir: dir });
  assert.equal(fromDir.source, "dir");
  assert.equal(verifySnpReport(report, { chain: fromDir.chainPem, now: NOW }).ok, true);
  await assert.rejects(
    fetchSnpEndorsements(report, { pemFile: join(ROOT, "absent.pem") }),
    /cannot read endorsement file/,
  );
  await assert.rejects(
    fetchSnpEndorsements(report, { pemDir: mkdtempSync(join(ROOT, "empty-")) }),
    /no \.pem files/,
  );
});
