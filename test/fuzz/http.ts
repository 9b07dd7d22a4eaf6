import fc from "fast-check";
import { certFingerprint } from "../../src/crypto/index.ts";
import { signGovRequest } from "../../src/gov/index.ts";
import { type CallResult, startTestNetwork, type TestNetwork } from "../helpers/network.ts";
import { type FuzzTarget, HANG_MS, Tally } from "./harness.ts";
import { mutated, mutatedJson } from "./mutate.ts";

/**
 * Every endpoint of a real node (in this process, real TLS), called with damaged and hostile
 * bodies, query strings and headers, as a user, a member, a stranger or nobody. Each answer must
 * be a clear JSON error below 500 (or a success), and the node must keep serving: after the
 * run a write still commits and every answer came in time.
 */

const ID = "0".repeat(64);
const ROUTES: Array<[string, string]> = [
  ["GET", "/node/state"],
  ["GET", "/node/network"],
  ["GET", "/node/network/nodes"],
  ["GET", "/node/commit"],
  ["GET", "/node/consensus"],
  ["GET", "/node/version"],
  ["GET", "/node/attestations"],
  ["GET", "/node/attestations/self"],
  ["GET", "/node/ready/app"],
  ["GET", "/node/ready/gov"],
  ["GET", "/node/metrics"],
  ["POST", "/node/join"],
  ["GET", "/app/tx"],
  ["GET", "/app/commit"],
  ["GET", "/app/receipt"],
  ["GET", "/app/receipt/cose"],
  ["POST", "/app/log/private"],
  ["PUT", "/app/log/private"],
  ["GET", "/app/log/private"],
  ["DELETE", "/app/log/private"],
  ["GET", "/app/log/private/count"],
  ["GET", "/app/log/private/range"],
  ["POST", "/app/log/public"],
  ["GET", "/app/log/public"],
  ["POST", "/gov/members/proposals:create"],
  ["GET", "/gov/members/proposals"],
  ["GET", `/gov/members/proposals/${ID}`],
  ["GET", `/gov/members/proposals/${ID}/actions`],
  ["POST", `/gov/members/proposals/${ID}:withdraw`],
  ["POST", `/gov/members/proposals/${ID}/ballots/${ID}:submit`],
  ["GET", `/gov/members/proposals/${ID}/ballots/${ID}`],
  ["POST", `/gov/members/state-digests/${ID}:update`],
  ["POST", `/gov/members/state-digests/${ID}:ack`],
  ["GET", `/gov/members/state-digests/${ID}`],
  ["POST", `/gov/recovery/members/${ID}:recover`],
  ["GET", `/gov/recovery/encrypted-shares/${ID}`],
  ["GET", "/gov/service/info"],
  ["GET", "/gov/service/members"],
  ["GET", "/gov/service/nodes"],
  ["GET", "/gov/service/constitution"],
  ["GET", "/gov/service/join-policy"],
  ["GET", "/gov/service/javascript-app"],
  ["GET", "/no/such/endpoint"],
];

const printable = fc.string({ unit: fc.constantFrom(..."abcXYZ019-_.~%/:=&?#;, ".split("")), maxLength: 40 });
const QUERIES = [
  "id=1",
  "id=-1",
  "id=99999999999999999999",
  "transaction_id=2.1",
  "transaction_id=x",
  "from=1&to=0",
  "limit=0",
  "api-version=2024-07-01",
  "api-version=1999",
  "id=%00",
  "id=1&id=2",
];
const HEADER_NAMES = [
  "content-type",
  "x-coco-read",
  "x-ms-ccf-transaction-id",
  "authorization",
  "x-coco-wait",
  "accept",
  "content-encoding",
  "x-coco-forwarded",
  "transfer-encoding-x",
];
const CONTENT_TYPES = [
  "application/json",
  "application/cose",
  "text/plain",
  "application/octet-stream",
  "application/json; charset=utf-16",
  "",
  "multipart/form-data; boundary=x",
];

interface HttpInput {
  route: [string, string];
  method: string | null;
  query: string;
  as: "user" | "member" | "stranger" | "none";
  headers: Record<string, string>;
  body: Uint8Array | null;
}

export function httpTarget(): FuzzTarget<HttpInput> {
  const tally = new Tally();
  let network: TestNetwork | undefined;
  let cose: Uint8Array[] = [];
  const json = [
    { msg: "hello", id: 1 },
    { id: 2, msg: "x", record_claim: true },
    { actions: [{ name: "set_user", args: { cert: "x" } }] },
  ];
  const bodies = fc.oneof(
    fc.constant(null),
    mutatedJson(json).map((v) => new TextEncoder().encode(JSON.stringify(v) ?? "null")),
    mutated(json.map((v) => new TextEncoder().encode(JSON.stringify(v)))),
    // Signed governance requests, made once the node's member exists, then damaged.
    fc.nat().chain((n) => (cose.length > 0 ? mutated(cose) : fc.constant(new Uint8Array([n & 0xff])))),
  );
  const input: fc.Arbitrary<HttpInput> = fc.record({
    route: fc.constantFrom(...ROUTES),
    method: fc.option(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"), {
      freq: 5,
    }),
    query: fc.oneof(fc.constant(""), fc.constantFrom(...QUERIES), printable),
    as: fc.constantFrom("user", "member", "stranger", "none"),
    headers: fc.dictionary(
      fc.constantFrom(...HEADER_NAMES),
      fc.oneof(
        fc.constantFrom(...CONTENT_TYPES),
        fc.constantFrom("linearizable", "local", "2.1", "1.99999999999999999", "-1"),
        printable,
      ),
      { maxKeys: 3 },
    ),
    body: bodies,
  });
  return {
    name: "http",
    parser:
      "every endpoint of a running node: src/rpc (bodies, query strings, headers, auth) and the apps behind it",
    tally,
    input,
    async setup() {
      network = await startTestNetwork();
      const member = network.identities.member;
      const now = Math.floor(Date.now() / 1000);
      const signed = { keyPem: member.privateKeyPem, certPem: member.certPem, createdAt: now };
      cose = [
        signGovRequest({ ...signed, type: "proposal", payload: new TextEncoder().encode('{"actions":[]}') }),
        signGovRequest({
          ...signed,
          type: "ballot",
          proposalId: ID,
          payload: new TextEncoder().encode('{"ballot":"x"}'),
        }),
        signGovRequest({ ...signed, type: "ack", payload: new TextEncoder().encode("{}") }),
      ];
      void certFingerprint;
    },
    async teardown() {
      if (!network) return;
      try {
        // The node still serves after everything it was sent: a write commits and reads back.
        const write = await network.call("POST", "/app/log/private", {
          body: { id: 424242, msg: "still here" },
        });
        if (write.status !== 200)
          throw new Error(`after fuzzing, a write got ${write.status}: ${write.text}`);
        const back = await network.call("GET", "/app/log/private?id=424242");
        if (back.status !== 200 || !back.text.includes("still here"))
          throw new Error(`after fuzzing, a read got ${back.status}`);
      } finally {
        await network.stop();
        await network.cleanup();
        network = undefined;
      }
    },
    async check(req) {
      const net = network!;
      const [routeMethod, path] = req.route;
      const method = req.method ?? routeMethod;
      const url = req.query ? `${path}?${req.query}` : path;
      const started = performance.now();
      let res: CallResult;
      try {
        res = await net.call(method, url, {
          as: req.as,
          headers: req.headers,
          ...(req.body !== null && method !== "GET" && method !== "HEAD" ? { rawBody: req.body } : {}),
        });
      } catch (error) {
        // The client library refuses some requests itself (a malformed header): not the node's doing.
        if (error instanceof Error && /invalid|header|content-length|request/i.test(error.message)) return;
        throw error;
      }
      const ms = performance.now() - started;
      if (ms > HANG_MS) throw new Error(`${method} ${url} took ${Math.round(ms)} ms`);
      if (res.status >= 500) throw new Error(`${method} ${url} -> ${res.status}: ${res.text.slice(0, 300)}`);
      if (res.status >= 400) {
        tally.refused++;
        if (method === "HEAD") return;
        let code: unknown;
        let message: unknown;
        try {
          const parsed = res.json() as { error?: { code?: unknown; message?: unknown } };
          code = parsed.error?.code;
          message = parsed.error?.message;
        } catch {
          throw new Error(`${method} ${url} -> ${res.status} without a JSON body: ${res.text.slice(0, 200)}`);
        }
        if (typeof code !== "string" || typeof message !== "string" || message.length === 0) {
          throw new Error(
            `${method} ${url} -> ${res.status} without {error: {code, message}}: ${res.text.slice(0, 200)}`,
          );
        }
      }
    },
  };
}
