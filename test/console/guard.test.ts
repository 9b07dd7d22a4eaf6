/**
 * Who may use the console (src/console/guard.ts): loopback only unless told otherwise, then
 * with its login token; its own Host only; writes only from its own pages. And errors that say
 * what failed, why and what to do. No network is needed: the console points at a closed port.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ConsoleIdentity, type ConsoleServer, startConsole } from "../../src/console/index.ts";
import { certFingerprint } from "../../src/crypto/index.ts";
import { makeIdentity } from "../helpers/network.ts";
import { freePort } from "../helpers/ports.ts";

async function identity(): Promise<ConsoleIdentity> {
  const member = await makeIdentity("member0");
  const service = await makeIdentity("service");
  // Nothing listens there: every call to "the network" fails as a node that is down would.
  const closed = await freePort();
  return {
    memberId: certFingerprint(member.certPem),
    subject: "CN=member0",
    certPem: member.certPem,
    keyPem: member.privateKeyPem,
    serviceCertPem: service.certPem,
    nodes: [`127.0.0.1:${closed}`],
  };
}

const json = { "content-type": "application/json", "x-coco-console": "1" };

describe("console guard, loopback mode", () => {
  let server: ConsoleServer;
  before(async () => {
    server = await startConsole({ identity: await identity(), port: 0, pollMs: 60_000 });
  });
  after(() => server.close());

  it("serves its own pages and API to loopback, with no token", async () => {
    const res = await fetch(`${server.origin}/api/session`);
    assert.equal(res.status, 200);
    const session = (await res.json()) as { memberId: string; serviceCertificate: string };
    assert.match(session.memberId, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(session).includes("PRIVATE KEY"), "the browser never gets a key");
    const page = await fetch(`${server.origin}/`);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  });

  it("refuses writes that do not come from its pages, and changes nothing", async () => {
    const body = JSON.stringify({ actions: [{ name: "set_recovery_threshold", args: {} }] });
    const plain = await fetch(`${server.origin}/api/gov/proposals`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body,
    });
    assert.equal(plain.status, 403);
    const foreign = await fetch(`${server.origin}/api/gov/proposals`, {
      method: "POST",
      headers: { ...json, origin: "https://attacker.example" },
      body,
    });
    assert.equal(foreign.status, 403);
    assert.equal(((await foreign.json()) as { error: { code: string } }).error.code, "CrossOrigin");
  });

  it("explains a failure: what, why, what to do", async () => {
    const res = await fetch(`${server.origin}/api/gov/proposals`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }],
      }),
    });
    assert.equal(res.status, 502);
    const { error } = (await res.json()) as {
      error: { what: string; code: string; message: string; action: string };
    };
    assert.equal(error.what, "Create the proposal");
    assert.equal(error.code, "Unreachable");
    assert.match(error.message, /cannot reach/);
    assert.match(error.action, /network is running/);
    const bad = await fetch(`${server.origin}/api/gov/proposals`, {
      method: "POST",
      headers: json,
      body: "{}",
    });
    assert.equal(bad.status, 400);
  });

  it("refuses a non-loopback address unless told to allow remote clients", async () => {
    await assert.rejects(
      startConsole({ identity: await identity(), host: "0.0.0.0", port: 0 }),
      /--allow-remote/,
    );
  });
});

describe("console guard, remote mode", () => {
  let server: ConsoleServer;
  before(async () => {
    server = await startConsole({ identity: await identity(), port: 0, allowRemote: true, pollMs: 60_000 });
  });
  after(() => server.close());

  it("needs its login token, and sets it as a strict cookie", async () => {
    assert.ok(server.token && server.token.length >= 32);
    assert.equal((await fetch(`${server.origin}/api/session`)).status, 401);
    assert.equal((await fetch(`${server.origin}/login?token=wrong`, { redirect: "manual" })).status, 401);
    const login = await fetch(server.url, { redirect: "manual" });
    assert.equal(login.status, 302);
    const cookie = login.headers.get("set-cookie") ?? "";
    assert.match(cookie, /HttpOnly; SameSite=Strict/);
    const withCookie = await fetch(`${server.origin}/api/session`, {
      headers: { cookie: cookie.split(";")[0]! },
    });
    assert.equal(withCookie.status, 200);
    const bearer = await fetch(`${server.origin}/api/session`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    assert.equal(bearer.status, 200);
  });
});
