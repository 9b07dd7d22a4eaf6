// Acquisition against a fake kernel: a temporary directory laid out like configfs-tsm, whose
// entries answer with a real vector report, and a stand-in for an external report tool.
import assert from "node:assert/strict";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { acquireSnpReport, SnpError, type TsmFileSystem } from "../../src/tee/index.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const ROOT = mkdtempSync(join(tmpdir(), "coco-snp-acquire-"));
after(() => rmSync(ROOT, { recursive: true, force: true }));

function vectorReport(name = "virtee-milan"): Uint8Array {
  return new Uint8Array(readFileSync(`${VECTORS}/${name}/report.bin`));
}
function reportDataOf(report: Uint8Array): Uint8Array {
  return report.slice(0x50, 0x90);
}

/** An auxblob certificate table: GUID, offset, length entries, a zero entry, then the data. */
function certTable(entries: [string, Uint8Array][]): Uint8Array {
  const header = (entries.length + 1) * 24;
  const total = header + entries.reduce((n, [, d]) => n + d.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = header;
  entries.forEach(([guid, data], i) => {
    out.set(Buffer.from(guid.replaceAll("-", ""), "hex"), i * 24);
    view.setUint32(i * 24 + 16, offset, true);
    view.setUint32(i * 24 + 20, data.length, true);
    out.set(data, offset);
    offset += data.length;
  });
  return out;
}

/**
 * A fake configfs-tsm: the template directory is what the kernel would show in a new entry
 * (provider, generation, outblob, auxblob). mkdir copies it in; writes to inblob/privlevel bump
 * generation; rmdir removes the entry. Every other operation is plain file I/O on the layout.
 */
function fakeKernel(template: Record<string, Uint8Array | string>, opts: { racer?: boolean } = {}) {
  const base = mkdtempSync(join(ROOT, "tsm-"));
  const tpl = mkdtempSync(join(ROOT, "template-"));
  for (const [name, data] of Object.entries(template)) writeFileSync(join(tpl, name), data);
  const seen = { inblob: [] as Uint8Array[], entries: [] as string[], removed: [] as string[] };
  const fs: TsmFileSystem = {
    mkdir: async (path) => {
      await mkdir(path); // fails if the entry exists, as configfs would
      cpSync(tpl, path, { recursive: true });
      seen.entries.push(path);
    },
    rmdir: async (path) => {
      await rm(path, { recursive: true });
      seen.removed.push(path);
    },
    readFile: async (path) => new Uint8Array(await readFile(path)),
    writeFile: async (path, data) => {
      await writeFile(path, data);
      const name = path.split("/").pop();
      if (name === "inblob") seen.inblob.push(new Uint8Array(Buffer.from(data as Uint8Array)));
      if (name === "inblob" || name === "privlevel") {
        const gen = join(path, "..", "generation");
        const next = Number((await readFile(gen, "utf8")).trim()) + (opts.racer ? 2 : 1);
        await writeFile(gen, `${next}\n`);
      }
    },
  };
  return { base, fs, seen };
}

test("configfs-tsm: fresh entry, 64-byte inblob, outblob read back, entry removed", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const report = vectorReport();
  const kernel = fakeKernel({ provider: "sev_guest\n", generation: "0\n", outblob: report });
  const data = reportDataOf(report);
  const got = await acquireSnpReport({ reportData: data, tsmPath: kernel.base, fs: kernel.fs, privlevel: 0 });
  assert.equal(got.source, "configfs-tsm");
  assert.deepEqual(got.bytes, report);
  assert.equal(
    got.report.measurement,
    "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
  );
  assert.deepEqual(kernel.seen.inblob, [data]);
  assert.equal(kernel.seen.entries.length, 1);
  assert.deepEqual(kernel.seen.removed, kernel.seen.entries);
  assert.deepEqual(readdirSync(kernel.base), []);
  assert.equal(got.certificates, undefined);
});

test("configfs-tsm: each request uses a new entry name", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const report = vectorReport();
  const kernel = fakeKernel({ provider: "sev_guest", generation: "0", outblob: report });
  await acquireSnpReport({ reportData: reportDataOf(report), tsmPath: kernel.base, fs: kernel.fs });
  await acquireSnpReport({ reportData: reportDataOf(report), tsmPath: kernel.base, fs: kernel.fs });
  assert.equal(new Set(kernel.seen.entries).size, 2);
});

test("configfs-tsm: the host's certificate table in auxblob becomes a chain", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const report = vectorReport("ccf-milan");
  const pems = readFileSync(`${VECTORS}/ccf-milan/chain.pem`, "utf8").match(
    /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
  )!;
  const der = pems.map((p) => new Uint8Array(Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ""), "base64")));
  const aux = certTable([
    ["c0b406a4-a803-4952-9743-3fb6014cd0ae", der[2]!], // ARK
    ["63da758d-e664-4564-adc5-f4b93be8accd", der[0]!], // VCEK
    ["4ab7b379-bbac-4fe4-a02f-05aef327c782", der[1]!], // ASK
    ["11111111-2222-3333-4444-555555555555", Uint8Array.of(1, 2, 3)],
  ]);
  const kernel = fakeKernel({ provider: "sev_guest", generation: "5", outblob: report, auxblob: aux });
  const got = await acquireSnpReport({
    reportData: reportDataOf(report),
    tsmPath: kernel.base,
    fs: kernel.fs,
  });
  assert.deepEqual(got.certificates?.entries.vcek, der[0]);
  assert.deepEqual(got.certificates?.unknown, ["11111111-2222-3333-4444-555555555555"]);
  const { verifySnpReport } = await import("../../src/tee/index.ts");
  const verdict = verifySnpReport(got.report, {
    chain: got.certificates!.chainPem,
    now: Date.parse("2026-01-01"),
  });
  assert.equal(verdict.ok, true);
});

async function acquireError(options: Parameters<typeof acquireSnpReport>[0]): Promise<SnpError> {
  try {
    await acquireSnpReport(options);
  } catch (e) {
    assert.ok(e instanceof SnpError, String(e));
    return e;
  }
  assert.fail("expected acquisition to fail");
}

test("configfs-tsm refuses another provider, a raced generation and a mismatched report", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const report = vectorReport();
  const data = reportDataOf(report);
  const tdx = fakeKernel({ provider: "tdx_guest", generation: "0", outblob: report });
  assert.match(
    (await acquireError({ reportData: data, tsmPath: tdx.base, fs: tdx.fs })).message,
    /provider is "tdx_guest"/,
  );
  assert.deepEqual(readdirSync(tdx.base), [], "the entry is removed on failure too");
  const raced = fakeKernel({ provider: "sev_guest", generation: "0", outblob: report }, { racer: true });
  assert.match(
    (await acquireError({ reportData: data, tsmPath: raced.base, fs: raced.fs })).message,
    /another writer/,
  );
  const ok = fakeKernel({ provider: "sev_guest", generation: "0", outblob: report });
  assert.match(
    (await acquireError({ reportData: new Uint8Array(64), tsmPath: ok.base, fs: ok.fs })).message,
    /different report data/,
  );
  const short = fakeKernel({ provider: "sev_guest", generation: "0", outblob: report.subarray(0, 500) });
  assert.match(
    (await acquireError({ reportData: data, tsmPath: short.base, fs: short.fs })).message,
    /unusable report.*1184/,
  );
});

test("configfs-tsm with the real file system: a missing tsm directory is a clear error", async () => {
  const e = await acquireError({ reportData: new Uint8Array(64), tsmPath: join(ROOT, "no-such", "report") });
  assert.equal(e.code, "acquire-failed");
  assert.match(e.message, /cannot create .*configfs-tsm/);
});

test("report data longer than 64 bytes is refused; shorter is zero-padded", async (t) => {
  assert.equal((await acquireError({ reportData: new Uint8Array(65) })).code, "bad-input");
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const report = vectorReport("ccf-milan"); // REPORT_DATA is all zero
  const kernel = fakeKernel({ provider: "sev_guest", generation: "0", outblob: report });
  await acquireSnpReport({ reportData: new Uint8Array(10), tsmPath: kernel.base, fs: kernel.fs });
  assert.deepEqual(kernel.seen.inblob, [new Uint8Array(64)]);
});

/** A stand-in for `snpguest report <report> <request>`: checks its input and copies a vector. */
function fakeTool(vector: string): string {
  const dir = mkdtempSync(join(ROOT, "tool-"));
  const script = join(dir, "fake-snpguest.sh");
  writeFileSync(
    script,
    `#!/bin/sh\n# args: report <out> <request>\n[ "$1" = report ] || { echo "usage" >&2; exit 64; }\n[ "$(wc -c < "$3")" -eq 64 ] || { echo "request must be 64 bytes" >&2; exit 65; }\ncp "${vector}" "$2"\n`,
  );
  chmodSync(script, 0o755);
  return script;
}

test("command: an external tool writes the report to the path it is given", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const vector = `${VECTORS}/virtee-milan/report.bin`;
  const tool = fakeTool(vector);
  const got = await acquireSnpReport({
    method: "command",
    reportData: reportDataOf(vectorReport()),
    command: { file: tool, args: ["report", "{report}", "{report-data}"] },
  });
  assert.equal(got.source, "command");
  assert.deepEqual(got.bytes, vectorReport());
});

test("command: failures say which tool failed and why", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const tool = fakeTool(`${VECTORS}/virtee-milan/report.bin`);
  const data = reportDataOf(vectorReport());
  const usage = await acquireError({
    method: "command",
    reportData: data,
    command: { file: tool, args: ["nope"] },
  });
  assert.match(usage.message, /fake-snpguest.sh failed: usage/);
  const silent = await acquireError({
    method: "command",
    reportData: data,
    command: { file: "/bin/true", args: [] },
  });
  assert.match(silent.message, /wrote no report/);
  const missing = await acquireError({
    method: "command",
    reportData: data,
    command: { file: join(ROOT, "absent"), args: [] },
  });
  assert.equal(missing.code, "acquire-failed");
  const wrongData = await acquireError({
    method: "command",
    reportData: new Uint8Array(64).fill(1),
    command: { file: tool, args: ["report", "{report}", "{report-data}"] },
  });
  assert.match(wrongData.message, /different report data/);
});
