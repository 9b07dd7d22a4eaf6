// The same JS app lifecycle under CCF's own default constitution, read in place: CCF's
// set_js_app stores the bundle, Coco's node still refuses code that does not load.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CocoClientError, type GovClient } from "../../src/client/index.ts";
import { govClient, passProposal, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const CCF = new URL("../../../shared/vectors/ccf/", import.meta.url);
const hasVectors = existsSync(new URL("app-logging/bundle.json", CCF));
const skip = !hasVectors && "../shared/vectors/ccf is absent: CCF's constitution and sample cannot be read";
const files = ["actions.js", "validate.js", "resolve.js", "apply.js"].map((f) =>
  fileURLToPath(new URL(`constitution-default/${f}`, CCF)),
);

let net: TestNetwork;
let gov: GovClient;
before(async () => {
  if (!hasVectors) return;
  net = await startTestNetwork({ constitution: files, jsApps: { replaceNative: true } });
  gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
  await gov.activate();
});
after(async () => {
  if (!hasVectors) return;
  await gov.close();
  await net.cleanup();
});

test("under CCF's constitution the logging sample installs, serves, and is removed; broken code is refused", {
  skip,
}, async () => {
  const bundle = JSON.parse(readFileSync(new URL("app-logging/bundle.json", CCF), "utf8"));
  const broken = structuredClone(bundle);
  broken.modules[0].module += "\nexport function {";
  await assert.rejects(
    gov.propose({ actions: [{ name: "set_js_app", args: { bundle: broken } }] }),
    (e: unknown) =>
      e instanceof CocoClientError &&
      e.code === "ProposalFailedToValidate" &&
      /does not load: SyntaxError/.test(e.message),
  );
  await passProposal(gov, "set_js_app", { bundle });
  const post = await net.call("POST", "/app/log/private", { body: { id: 1, msg: "under CCF's rules" } });
  assert.equal(post.status, 200, post.text);
  assert.deepEqual((await net.call("GET", "/app/log/private?id=1")).json(), { msg: "under CCF's rules" });
  const stored = (
    await net.call("GET", "/gov/service/javascript-app?api-version=2024-07-01", { as: "member" })
  ).json();
  assert.equal(stored.endpoints["GET /log/private"].js_module, "/logging.js");
  assert.deepEqual(stored.modules, ["/logging.js"]);
  const custom = await net.call("GET", "/app/custom_auth", {
    headers: { "x-custom-auth-name": "A", "x-custom-auth-age": "20" },
  });
  assert.equal(custom.status, 200);
  await passProposal(gov, "remove_js_app", undefined);
  assert.equal((await net.call("GET", "/app/custom_auth")).status, 404, "the app is gone");
});
