/**
 * A node on SEV-SNP whose platform stops giving reports (the secure processor refuses the guest's
 * request: configfs-tsm's outblob read fails with EIO) answers `/node/attestations/self` with 503
 * AttestationUnavailable in Coco's error shape (docs/api.md), keeps serving everything else, and
 * attests again as soon as the platform answers. The failure is the platform's, not the rpc
 * layer's: the node runs its real attestation provider against a simulated kernel whose reports
 * are signed by a fake AMD, and the kernel fails the way Linux does.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { test } from "node:test";
import type { TsmFileSystem } from "../../src/tee/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { makeFakeAmd } from "../tee/fake-amd.ts";
import { fakeReport } from "../tee/fake-report.ts";
import { fakeGuest, SEAM_KEY_COMMAND, sealingSeams } from "../tee/fake-snp-keys.ts";

const MEASUREMENT = "a77e".repeat(24);
const HOST_DATA = createHash("sha256").update("package coco\ndefault allow := true\n").digest("hex");

/**
 * An in-memory configfs-tsm report directory, as the sev-guest driver presents it: a new entry
 * holds `provider` and `generation`; writing `inblob` bumps `generation`; reading `outblob` asks
 * the secure processor for a report. Once `reportsLeft` reports have been given, the firmware
 * refuses and the read fails with EIO, as Linux reports a failed SNP guest request. `reads`
 * counts outblob reads.
 */
function sevGuestKernel(report: (inblob: Uint8Array) => Uint8Array) {
  const files = new Map<string, Uint8Array>();
  const kernel = {
    reportsLeft: Number.POSITIVE_INFINITY,
    reads: 0,
    fs: undefined as unknown as TsmFileSystem,
  };
  const text = (s: string) => new TextEncoder().encode(s);
  kernel.fs = {
    mkdir: async (path) => {
      files.set(join(path, "provider"), text("sev_guest\n"));
      files.set(join(path, "generation"), text("0\n"));
    },
    rmdir: async (path) => {
      for (const name of [...files.keys()]) if (dirname(name) === path) files.delete(name);
    },
    readFile: async (path) => {
      if (basename(path) === "outblob") {
        kernel.reads++;
        if (kernel.reportsLeft <= 0) {
          throw Object.assign(new Error(`EIO: i/o error, read '${path}'`), { code: "EIO", errno: -5 });
        }
        const inblob = files.get(join(dirname(path), "inblob"));
        if (!inblob) throw Object.assign(new Error(`EINVAL: no inblob, read '${path}'`), { code: "EINVAL" });
        kernel.reportsLeft--;
        return report(inblob);
      }
      const bytes = files.get(path);
      if (!bytes) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: "ENOENT" });
      return bytes;
    },
    writeFile: async (path, data) => {
      files.set(path, typeof data === "string" ? text(data) : new Uint8Array(data));
      if (basename(path) !== "inblob") return;
      const generation = join(dirname(path), "generation");
      const count = Number(new TextDecoder().decode(files.get(generation)).trim());
      files.set(generation, text(`${count + 1}\n`));
    },
  };
  return kernel;
}

test("a node that cannot attest itself answers 503 AttestationUnavailable, serves the rest, and recovers", {
  timeout: budget(120_000),
}, async () => {
  const amd = await makeFakeAmd();
  const chainDir = mkdtempSync(join(tmpdir(), "coco-attest-chain-"));
  const chainFile = join(chainDir, "chain.pem");
  writeFileSync(chainFile, amd.chainPem);
  const kernel = sevGuestKernel((inblob) =>
    fakeReport(amd.vcekKeyPem, { reportData: inblob, measurement: MEASUREMENT, hostData: HOST_DATA }),
  );
  // The node attests itself before it creates the service (it refuses to start otherwise); the
  // platform fails right after that first report, so the node's endpoint has never attested.
  kernel.reportsLeft = 1;
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService(
      {
        openAtNodes: 0,
        attestation: {
          platform: "snp",
          snp: {
            reportSource: { configfsTsm: "/sys/kernel/config/tsm/report" },
            endorsements: { file: chainFile },
          },
        },
        sealing: { snp: { keyCommand: SEAM_KEY_COMMAND } },
      },
      {
        attestationSeams: {
          tsmFs: kernel.fs,
          ...sealingSeams(fakeGuest({ measurement: MEASUREMENT })),
        },
      },
    );
    assert.equal(kernel.reportsLeft, 0, "the node attested itself to create the service");

    const refused = await cluster.call(n0, "GET", "/node/attestations/self");
    assert.equal(refused.status, 503, refused.text);
    assert.deepEqual(Object.keys(refused.json()), ["error"]);
    assert.deepEqual(Object.keys(refused.json().error).sort(), ["code", "message"]);
    assert.equal(refused.json().error.code, "AttestationUnavailable");
    assert.match(
      refused.json().error.message,
      /^cannot attest this node: configfs-tsm: cannot read outblob: EIO/,
    );
    // A failed attempt is not kept: each request asks the platform again.
    const readsBefore = kernel.reads;
    assert.equal((await cluster.call(n0, "GET", "/node/attestations/self")).status, 503);
    assert.equal(kernel.reads, readsBefore + 1, "the second request asked the platform again");

    // Everything that does not need a fresh report still serves: the node's state, and the
    // attestation it recorded when it created the service.
    assert.equal((await cluster.call(n0, "GET", "/node/state")).status, 200);
    const recorded = await cluster.call(n0, "GET", "/node/attestations");
    assert.equal(recorded.status, 200, recorded.text);
    const own = recorded.json().attestations.find((a: { node_id: string }) => a.node_id === n0.node.nodeId);
    assert.equal(own?.attestation?.format, "snp");
    assert.equal(own?.attestation?.measurement, MEASUREMENT);

    // The platform answers again: so does the endpoint, with a report binding the node's key.
    kernel.reportsLeft = Number.POSITIVE_INFINITY;
    const attested = await cluster.call(n0, "GET", "/node/attestations/self");
    assert.equal(attested.status, 200, attested.text);
    assert.equal(attested.json().format, "snp");
    assert.equal(attested.json().node_id, n0.node.nodeId);
    assert.equal(attested.json().measurement, MEASUREMENT);
    assert.equal(attested.json().report_data, `${n0.node.nodeId}${"00".repeat(32)}`);
    // Once made, the attestation is kept: a later platform failure does not take it away.
    kernel.reportsLeft = 0;
    assert.equal((await cluster.call(n0, "GET", "/node/attestations/self")).status, 200);
  } finally {
    await cluster.stop();
    rmSync(chainDir, { recursive: true, force: true });
  }
});
