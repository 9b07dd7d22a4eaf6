// The sample against a live sandbox: one node, started with the app installed (as
// `coco sandbox --js-app samples/js-app` does), called over HTTPS with user0's certificate.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { type Sandbox, startSandbox } from "../../../src/cli/sandbox.ts";
import { reservePorts } from "../../../test/helpers/ports.ts";

const appDir = join(dirname(fileURLToPath(import.meta.url)), "..");
let sandbox: Sandbox;
let workspace: string;
let base: string;
let user: Agent;
let anonymous: Agent;

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), "coco-sample-"));
  const port = await reservePorts(2);
  sandbox = await startSandbox({
    dir: workspace,
    nodes: 1,
    port,
    quiet: true,
    jsApp: appDir,
    print: () => {},
  });
  base = `https://127.0.0.1:${port}`;
  const ca = readFileSync(join(workspace, "service_cert.pem"), "utf8");
  user = new Agent({
    connect: {
      ca,
      cert: readFileSync(join(workspace, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(workspace, "user0_privk.pem"), "utf8"),
    },
  });
  anonymous = new Agent({ connect: { ca } });
});
after(async () => {
  await user?.close();
  await anonymous?.close();
  await sandbox?.stop();
  rmSync(workspace, { recursive: true, force: true });
});

async function call(method: string, path: string, agent: Agent, body?: unknown) {
  const res = await request(`${base}${path}`, {
    method: method as "GET",
    dispatcher: agent,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

test("a user stores and reads a note; the author is the caller's id", async () => {
  assert.equal((await call("PUT", "/app/notes/n1", user, { text: "hello" })).status, 204);
  const got = await call("GET", "/app/notes/n1", user);
  assert.equal(got.status, 200, got.text);
  const note = JSON.parse(got.text);
  assert.equal(note.text, "hello");
  assert.match(note.author, /^[0-9a-f]{64}$/);
  assert.equal((await call("GET", "/app/notes/none", user)).status, 404);
});

test("bad input is refused; policies are tried in order", async () => {
  const bad = await call("PUT", "/app/notes/n2", user, { text: "" });
  assert.equal(bad.status, 400);
  assert.equal(bad.text, "text must be a non-empty string");
  assert.equal(JSON.parse((await call("GET", "/app/whoami", user)).text).policy, "user_cert");
  assert.equal(JSON.parse((await call("GET", "/app/whoami", anonymous)).text).policy, "no_auth");
  const refused = await call("GET", "/app/notes/n1", anonymous);
  assert.equal(refused.status, 401);
  assert.match(refused.text, /jwt: no bearer token/);
});
