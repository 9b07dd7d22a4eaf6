import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { Agent, request } from "undici";
import { INSTANT_TRUST_WARNING } from "../../src/node/admission.ts";
import { newNodeKey } from "../../src/node/identity.ts";
import { ConfigError, parseConfig, realEnvironment, runNode } from "../../src/node/index.ts";
import { generateEncryptionKey, signJoinProof, unwrapSecrets } from "../../src/node/join.ts";
import { virtualAttestation } from "../../src/tee/index.ts";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { makeIdentity } from "../helpers/network.ts";

test("(d) instant trust while Opening is off unless the virtual platform opts in; SNP refuses the option", () => {
  const base = { dir: "n", members: [{ cert: "m.pem" }] };
  assert.equal(parseConfig(base, "/tmp").trustJoinersWhileOpening, false);
  assert.equal(
    parseConfig({ ...base, attestation: { platform: "virtual" } }, "/tmp").trustJoinersWhileOpening,
    false,
  );
  const on = { ...base, attestation: { platform: "virtual", virtual: { trustJoinersWhileOpening: true } } };
  assert.equal(parseConfig(on, "/tmp").trustJoinersWhileOpening, true);
  assert.throws(
    () =>
      parseConfig(
        { ...base, attestation: { platform: "virtual", virtual: { trustJoinersWhileOpening: "yes" } } },
        "/tmp",
      ),
    (e: unknown) => e instanceof ConfigError && /must be true or false/.test(e.message),
  );
  assert.throws(
    () =>
      parseConfig(
        {
          ...base,
          attestation: {
            platform: "snp",
            snp: { endorsements: { kdsUrl: "https://kds.example" } },
            virtual: { trustJoinersWhileOpening: true },
          },
        },
        "/tmp",
      ),
    (e: unknown) =>
      e instanceof ConfigError && /attestation\.virtual.*only used with platform "virtual"/.test(e.message),
  );
});

/** A one-node service that stays Opening, logging into `records`; answers forged joins. */
async function openingService(attestation: Record<string, unknown> | undefined) {
  const dir = mkdtempSync(join(tmpdir(), "coco-dev-trust-"));
  const member = await makeIdentity("member0");
  writeFileSync(join(dir, "member0_cert.pem"), member.certPem);
  const records: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: "info" }, { write: (line: string) => records.push(JSON.parse(line)) });
  const config = parseConfig(
    {
      dir: "n0",
      rpc: { address: `127.0.0.1:${await freePort()}` },
      members: [{ cert: "member0_cert.pem" }],
      ...(attestation ? { attestation } : {}),
    },
    dir,
  );
  const running = await runNode(config, realEnvironment, log, null);
  /** One forged joiner; `polls` > 1 asks again (as a joiner does) while the answer is Pending. */
  const forgedJoin = async (polls = 1) => {
    const key = await newNodeKey("127.0.0.1");
    const encryption = generateEncryptionKey();
    const body = JSON.stringify({
      node_public_key: key.publicKeyPem,
      certificate_signing_request: key.csrPem,
      encryption_public_key: encryption.publicKeyPem,
      encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
      rpc_address: `127.0.0.1:${await freePort()}`,
      node_address: `127.0.0.1:${await freePort()}`,
      attestation: virtualAttestation(key.publicKeyPem),
    });
    const dispatcher = new Agent({ connect: { ca: running.node.identity.serviceCertPem } });
    try {
      for (let poll = 1; ; poll++) {
        const res = await request(`https://127.0.0.1:${running.port}/node/join`, {
          method: "POST",
          dispatcher,
          headers: { "content-type": "application/json" },
          body,
        });
        const answer = (await res.body.json()) as Record<string, unknown>;
        if (res.statusCode !== 200 || answer.status !== "Pending" || poll >= polls) {
          return { status: res.statusCode, answer, encryption };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await dispatcher.close();
    }
  };
  return {
    running,
    records,
    join: forgedJoin,
    async stop() {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("(d) by default a forged join to an Opening service is Pending, gets nothing, and nothing warns", {
  timeout: budget(60_000),
}, async () => {
  const service = await openingService(undefined);
  try {
    assert.equal(service.running.node.serviceInfo().status, "Opening");
    const { status, answer } = await service.join();
    assert.equal(status, 200);
    assert.equal(answer.status, "Pending");
    assert.equal(answer.node_certificate, undefined);
    assert.equal(answer.wrapped_secrets, undefined);
    assert.equal(answer.peers, undefined);
    assert.equal(service.running.node.state.trustedNodes().length, 1, "only the first node is trusted");
    assert.ok(!service.records.some((r) => r.msg === INSTANT_TRUST_WARNING));
  } finally {
    await service.stop();
  }
});

test("(d) with the development option on, the node warns at start, and a joiner while Opening is trusted at once", {
  timeout: budget(60_000),
}, async () => {
  const service = await openingService({ platform: "virtual", virtual: { trustJoinersWhileOpening: true } });
  try {
    const warning = service.records.find((r) => r.msg === INSTANT_TRUST_WARNING);
    assert.ok(warning, "a loud warning at start");
    assert.equal(warning.level, 40, "at warn level");
    assert.match(INSTANT_TRUST_WARNING, /^INSECURE: .*Development only/);
    // Trusted once the transaction that trusts it is durable (bounded: 300 polls, 100 ms apart).
    const { status, answer, encryption } = await service.join(300);
    assert.equal(status, 200);
    assert.equal(answer.status, "Trusted");
    assert.equal(typeof answer.node_certificate, "string");
    // The documented trade-off: the service's secrets go to whoever joins first.
    const secrets = unwrapSecrets(answer.wrapped_secrets as never, encryption.privateKeyPem);
    assert.equal(secrets.service_private_key, service.running.node.identity.servicePrivateKeyPem);
    assert.equal(service.running.node.state.trustedNodes().length, 2);
  } finally {
    await service.stop();
  }
});
