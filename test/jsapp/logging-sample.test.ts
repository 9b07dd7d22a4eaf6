// Acceptance: CCF's own JS logging sample, read in place and unmodified, installed by governance
// on a 3-node service and walked endpoint by endpoint as its ENDPOINTS.md describes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { certFingerprint, verifyJsonReceipt } from "../../src/crypto/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { passProposal } from "../helpers/network.ts";

const SAMPLE = new URL("../../../shared/vectors/ccf/app-logging/", import.meta.url);
const hasVectors = existsSync(new URL("bundle.json", SAMPLE));
const skip =
  !hasVectors && "../shared/vectors/ccf/app-logging is absent: CCF's logging sample cannot be read";

type As = "user" | "member" | "none";
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are loosely typed JSON
  json(): any;
}

describe("CCF's JS logging sample on a 3-node service", { skip }, () => {
  let cluster: Cluster;
  const agents = new Map<string, Agent>();
  let userId: string;

  /** One connection pool per identity and purpose: a pool that forwarded once stays forwarded. */
  function agent(as: As, pool: string): Agent {
    const key = `${as}/${pool}`;
    let a = agents.get(key);
    if (!a) {
      const id = as === "user" ? cluster.user : as === "member" ? cluster.member : undefined;
      a = new Agent({
        connect: {
          ca: cluster.nodes[0]!.node.identity.serviceCertPem,
          ...(id ? { cert: id.certPem, key: id.privateKeyPem } : {}),
        },
      });
      agents.set(key, a);
    }
    return a;
  }

  async function call(
    node: RunningNode,
    method: string,
    path: string,
    opts: { as?: As; pool?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const res = await request(cluster.url(node, path), {
      method: method as "GET",
      dispatcher: agent(opts.as ?? "user", opts.pool ?? "main"),
      headers: {
        ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
        ...opts.headers,
      },
      body,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  const primary = () => cluster.primary()!;
  const backups = () => cluster.nodes.filter((n) => !n.node.isPrimary);
  const txidOf = (a: Answer) => a.headers["x-ms-ccf-transaction-id"] as string;

  /** Retries while the answer is 202 (historical state being fetched), as CCF's clients do. */
  async function settled(get: () => Promise<Answer>): Promise<Answer> {
    // An idle machine's 10 s of retries, stretched by the load.
    const limit = budget(10_000);
    for (const end = Date.now() + limit; Date.now() < end; ) {
      const a = await get();
      if (a.status !== 202) return a;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`still 202 after ${limit} ms`);
  }

  /** A read on a backup, over a connection that never forwarded, once the backup caught up. */
  async function readOnBackup(path: string, expect: (a: Answer) => boolean): Promise<Answer> {
    let last: Answer | undefined;
    await cluster.until(`a backup answers ${path}`, async () => {
      last = await call(backups()[0]!, "GET", path, { pool: "backup-reads" });
      return expect(last);
    });
    return last!;
  }

  before(async () => {
    cluster = await Cluster.create();
    const settings = { openAtNodes: 3, jsApps: { replaceNative: true } };
    const n0 = await cluster.startService(settings);
    await Promise.all([
      cluster.join("n1", n0, { jsApps: { replaceNative: true } }),
      cluster.join("n2", n0, { jsApps: { replaceNative: true } }),
    ]);
    await cluster.untilOpen();
    userId = certFingerprint(cluster.user.certPem);
    const bundle = JSON.parse(readFileSync(new URL("bundle.json", SAMPLE), "utf8"));
    await passProposal(await cluster.gov(), "set_js_app", { bundle });
  });
  after(async () => {
    await Promise.all([...agents.values()].map((a) => a.close()));
    await cluster?.stop();
  });

  test("GET /app/custom_auth: the handler authenticates by headers, on the primary and on a backup", async () => {
    for (const node of [primary(), backups()[0]!]) {
      const auth = (headers: Record<string, string>) => call(node, "GET", "/app/custom_auth", { headers });
      const none = await auth({});
      assert.equal(none.status, 401);
      assert.equal(none.text, "Missing required header x-custom-auth-name");
      assert.equal(none.headers["content-type"], "text/plain");
      assert.equal(
        (await auth({ "x-custom-auth-name": "Alice" })).text,
        "Missing required header x-custom-auth-age",
      );
      assert.equal(
        (await auth({ "x-custom-auth-name": "", "x-custom-auth-age": "42" })).text,
        "Name must not be empty",
      );
      const young = await auth({ "x-custom-auth-name": "Bob", "x-custom-auth-age": "12" });
      assert.equal(young.status, 401);
      assert.equal(young.text, "Caller age must be at least 16");
      const alice = await auth({ "x-custom-auth-name": "Alice", "x-custom-auth-age": "42" });
      assert.equal(alice.status, 200, alice.text);
      assert.deepEqual(alice.json(), {
        name: "Alice",
        age: 42,
        description: "Your name is Alice and you are 42",
      });
      const boom = await auth({ "x-custom-auth-explode": "kaboom" });
      assert.equal(boom.status, 500);
      assert.match(boom.json().error.details[0].message, /kaboom/);
      assert.match(boom.json().error.details[0].trace, /logging\.js:\d+/);
    }
  });

  test("POST /app/multi_auth describes each identity; user data changes the description", async () => {
    const user = await call(backups()[0]!, "POST", "/app/multi_auth");
    assert.equal(user.status, 200, user.text);
    assert.ok(user.text.startsWith("User TLS cert"), user.text);
    assert.ok(user.text.includes(userId));
    assert.ok(!user.text.includes("undefined"));
    const member = await call(primary(), "POST", "/app/multi_auth", { as: "member" });
    assert.ok(member.text.startsWith("Member TLS cert"), member.text);
    const nobody = await call(primary(), "POST", "/app/multi_auth", { as: "none" });
    assert.ok(nobody.text.startsWith("Unauthenticated"), nobody.text);
    await passProposal(await cluster.gov(), "set_user_data", {
      user_id: userId,
      user_data: { team: "blue" },
    });
    const changed = await call(primary(), "POST", "/app/multi_auth");
    assert.notEqual(changed.text, user.text);
    assert.ok(changed.text.includes('"team": "blue"'));
  });

  test("private records: write through a backup, read on the primary and on a backup, count, delete, clear", async () => {
    const scope = `s${Date.now()}`;
    const count = async () => (await call(primary(), "GET", `/app/log/private/count?scope=${scope}`)).json();
    assert.equal(await count(), 0);
    for (const id of [1, 2, 3]) {
      const post = await call(backups()[1]!, "POST", `/app/log/private?scope=${scope}`, {
        pool: "backup-writes",
        body: { id, msg: `private ${id}`, scope },
        headers: { "x-coco-wait": "commit" },
      });
      assert.equal(post.status, 200, post.text);
      assert.equal(post.json(), true);
      assert.equal(await count(), id);
    }
    const read = await call(primary(), "GET", `/app/log/private?id=2&scope=${scope}`);
    assert.deepEqual(read.json(), { msg: "private 2" });
    await readOnBackup(
      `/app/log/private?id=3&scope=${scope}`,
      (a) => a.status === 200 && a.json().msg === "private 3",
    );
    await readOnBackup(`/app/log/private/backup?id=1&scope=${scope}`, (a) => a.status === 200);
    const missing = await call(primary(), "GET", `/app/log/private?id=99&scope=${scope}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.json().error.code, "ResourceNotFound");
    const noId = await call(primary(), "GET", `/app/log/private?scope=${scope}`);
    assert.equal(noId.status, 500, "the handler throws without an id");

    const del = await call(backups()[0]!, "DELETE", `/app/log/private?id=1&scope=${scope}`, {
      pool: "backup-writes",
    });
    assert.equal(del.status, 200, del.text);
    assert.equal((await call(primary(), "GET", `/app/log/private?id=1&scope=${scope}`)).status, 404);
    assert.equal((await call(primary(), "DELETE", `/app/log/private?id=1&scope=${scope}`)).status, 404);
    assert.equal((await call(primary(), "DELETE", `/app/log/private/all?scope=${scope}`)).status, 200);
    assert.equal(await count(), 0);
    assert.equal((await call(primary(), "GET", `/app/log/private?id=2&scope=${scope}`)).status, 404);

    const stranger = await call(primary(), "GET", `/app/log/private?id=2`, { as: "none" });
    assert.equal(stranger.status, 401);
  });

  test("anonymous, admin-only, prefix_cert and raw_text writes", async () => {
    const anon = await call(backups()[0]!, "POST", "/app/log/private/anonymous", {
      as: "none",
      body: { id: 40, msg: "from nobody" },
    });
    assert.equal(anon.status, 200, anon.text);
    assert.equal((await call(primary(), "GET", "/app/log/private?id=40")).json().msg, "from nobody");

    const admin = () =>
      call(primary(), "POST", "/app/log/private/admin_only", { body: { id: 41, msg: "admin" } });
    const refused = await admin();
    assert.equal(refused.status, 403);
    assert.equal(refused.text, "Only admins may access this endpoint");
    await passProposal(await cluster.gov(), "set_user_data", {
      user_id: userId,
      user_data: { isAdmin: true },
    });
    assert.equal((await admin()).status, 200);
    await passProposal(await cluster.gov(), "set_user_data", {
      user_id: userId,
      user_data: { isAdmin: false },
    });
    assert.equal((await admin()).status, 403);

    const prefixed = await call(primary(), "POST", "/app/log/private/prefix_cert", {
      body: { id: 7, msg: "signed" },
    });
    assert.equal(prefixed.status, 200, prefixed.text);
    assert.equal((await call(primary(), "GET", "/app/log/private?id=7")).json().msg, `${userId}: signed`);

    const raw = await call(backups()[0]!, "POST", "/app/log/private/raw_text/raw1", {
      pool: "backup-writes",
      raw: "just text",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(raw.status, 200, raw.text);
    assert.equal((await call(primary(), "GET", "/app/log/private?id=raw1")).json().msg, "just text");
    const wrongType = await call(primary(), "POST", "/app/log/private/raw_text/raw2", {
      raw: "{}",
      headers: { "content-type": "application/json" },
    });
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.text, "Expected content-type 'text/plain'. Got 'application/json'.");
  });

  test("public records, with a claims digest bound into the receipt", async () => {
    const post = await call(backups()[0]!, "POST", "/app/log/public", {
      pool: "backup-writes",
      body: { id: 50, msg: "public fifty", record_claim: true },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(post.status, 200, post.text);
    assert.deepEqual((await call(primary(), "GET", "/app/log/public?id=50")).json(), { msg: "public fifty" });
    await readOnBackup("/app/log/public/backup?id=50", (a) => a.status === 200);
    const before = (await call(primary(), "GET", "/app/log/public/count")).json();
    assert.ok(before >= 1);
    assert.equal((await call(primary(), "DELETE", "/app/log/public?id=50")).status, 200);
    assert.equal((await call(primary(), "GET", "/app/log/public/count")).json(), before - 1);
    await call(primary(), "POST", "/app/log/public?scope=tmp", { body: { id: 1, msg: "x" } });
    assert.equal((await call(primary(), "DELETE", "/app/log/public/all?scope=tmp")).status, 200);
    assert.equal((await call(primary(), "GET", "/app/log/public/count?scope=tmp")).json(), 0);
  });

  test("historical endpoints: header errors, then the state and a receipt that verifies, on primary and backup", async () => {
    const service = cluster.nodes[0]!.node.identity.serviceCertPem;
    const historical = (node: RunningNode, path: string, txid?: string) =>
      call(node, "GET", path, { headers: txid === undefined ? {} : { "x-ms-ccf-transaction-id": txid } });
    const missing = await historical(primary(), "/app/log/private/historical?id=60");
    assert.equal(missing.status, 400);
    assert.equal(missing.json().error.code, "MissingRequiredHeader");
    assert.equal(
      (await historical(primary(), "/app/log/private/historical?id=60", "nope")).json().error.code,
      "InvalidHeaderValue",
    );
    assert.equal(
      (await historical(primary(), "/app/log/private/historical?id=60", "99999.1")).json().error.code,
      "TransactionInvalid",
    );
    const unknown = await historical(primary(), "/app/log/private/historical?id=60", "99999.999999");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, "TransactionPendingOrUnknown");

    const privateTxids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const msg = `historical ${i}`;
      const priv = await call(primary(), "POST", "/app/log/private", {
        body: { id: 60 + i, msg },
        headers: { "x-coco-wait": "commit" },
      });
      privateTxids.push(txidOf(priv));
      const pub = await call(primary(), "POST", "/app/log/public", {
        body: { id: 60 + i, msg, record_claim: true },
        headers: { "x-coco-wait": "commit" },
      });
      for (const node of [primary(), backups()[0]!]) {
        const p = await settled(() =>
          historical(node, `/app/log/private/historical_receipt?id=${60 + i}`, txidOf(priv)),
        );
        assert.equal(p.status, 200, p.text);
        assert.equal(p.json().msg, msg);
        const verdict = verifyJsonReceipt(p.json().receipt, service);
        assert.ok(verdict.ok, JSON.stringify(verdict));

        const q = await settled(() =>
          historical(node, `/app/log/public/historical_receipt?id=${60 + i}`, txidOf(pub)),
        );
        assert.equal(q.status, 200, q.text);
        const receipt = q.json().receipt;
        assert.equal(receipt.leaf_components.claims_digest, undefined, "the app removed it");
        receipt.leaf_components.claims_digest = createHash("sha256").update(q.json().msg).digest("hex");
        assert.ok(verifyJsonReceipt(receipt, service).ok);
        const plain = await settled(() =>
          historical(node, `/app/log/public/historical?id=${60 + i}`, txidOf(pub)),
        );
        assert.deepEqual(plain.json(), { msg });
      }
      // The historical state is that transaction's writes: another id is not in it.
      const other = await settled(() =>
        historical(primary(), "/app/log/private/historical?id=999", txidOf(priv)),
      );
      assert.equal(other.status, 404);
    }
    // Once its proof left memory, the receipt is rebuilt from the ledger files, as verifiable.
    const txid = privateTxids[0]!;
    const [view, seqno] = txid.split(".").map(Number) as [number, number];
    for (const node of [primary(), backups()[0]!]) {
      node.node.state.receiptWindow = 1;
      assert.equal(node.node.state.receipt(view, seqno).status, "Archived");
      const p = await settled(() => historical(node, "/app/log/private/historical_receipt?id=60", txid));
      assert.equal(p.status, 200, p.text);
      assert.equal(p.json().msg, "historical 0");
      assert.ok(verifyJsonReceipt(p.json().receipt, service).ok);
    }
  });

  test("historical ranges: every write to an id exactly once, in order, page by page", async () => {
    const writes: Array<{ id: number; msg: string; seqno: number }> = [];
    for (let i = 0; i < 60; i++) {
      const id = 142 + (i % 3);
      const msg = `range ${i}`;
      const res = await call(primary(), "POST", "/app/log/public", { body: { id, msg } });
      assert.equal(res.status, 200, res.text);
      writes.push({ id, msg, seqno: Number(txidOf(res).split(".")[1]) });
    }
    const last = writes.at(-1)!.seqno;
    await cluster.until("the writes are committed", async () => primary().node.state.commitSeqno >= last);
    for (const id of [142, 143, 144]) {
      const expected = writes.filter((w) => w.id === id).map(({ seqno, msg }) => ({ seqno, id, msg }));
      let path: string | undefined = `/app/log/public/historical/range?id=${id}`;
      const got: unknown[] = [];
      while (path !== undefined) {
        const page = await settled(() => call(primary(), "GET", path!));
        assert.equal(page.status, 200, page.text);
        got.push(...page.json().entries);
        path = page.json()["@nextLink"];
      }
      assert.deepEqual(got, expected);
      const from = expected[3]!.seqno;
      const to = expected[10]!.seqno;
      const window = await settled(() =>
        call(
          backups()[0]!,
          "GET",
          `/app/log/public/historical/range?id=${id}&from_seqno=${from}&to_seqno=${to}`,
          {
            pool: "backup-reads",
          },
        ),
      );
      assert.deepEqual(window.json().entries, expected.slice(3, 11));
    }
    const bad = await call(primary(), "GET", "/app/log/public/historical/range?id=142&from_seqno=x");
    assert.equal(bad.status, 400);
    const committed = primary().node.state.commitSeqno;
    const future = await call(
      primary(),
      "GET",
      `/app/log/public/historical/range?id=142&to_seqno=${committed * 2}`,
    );
    assert.equal(future.status, 400);
    assert.equal(future.json().error.msg, "End of range must be committed");
    const reversed = await call(
      primary(),
      "GET",
      "/app/log/public/historical/range?id=142&from_seqno=10&to_seqno=5",
    );
    assert.equal(reversed.status, 400);
  });

  test("GET /app/api lists the sample's endpoints", async () => {
    const api = await call(backups()[0]!, "GET", "/app/api", { as: "none" });
    assert.equal(api.status, 200);
    const paths = api.json().paths;
    assert.equal(Object.keys(paths).length, 20);
    assert.ok(paths["/app/log/private/raw_text/{id}"].post);
  });
});
