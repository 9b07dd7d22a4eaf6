/**
 * CPU per governance call, in one process: CCF's default constitution (from ../shared/vectors)
 * run through Coco's governance (createProposal + submitBallot: validate, resolve, the ballot,
 * resolve again, apply) on an in-memory store, one accepted `set_user` proposal per round. With
 * `--base DIR` the same rounds also run against another checkout's src/ (e.g. /work/main), the two
 * alternating block by block, so a loaded machine affects both alike. CPU is process.cpuUsage()
 * (user + system) around each block; it prints the median and spread of microseconds per round.
 *
 *   node --import tsx bench/constitution-calls.ts [--rounds 200] [--blocks 10] [--base ../main]
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "200" },
    blocks: { type: "string", default: "10" },
    base: { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const BLOCKS = Number(values.blocks);
const HEAD = resolve(import.meta.dirname, "..");
const CCF = join(HEAD, "..", "shared", "vectors", "ccf", "constitution-default");
if (!existsSync(CCF)) throw new Error(`CCF's default constitution is not at ${CCF}`);
const SOURCE = ["actions.js", "validate.js", "resolve.js", "apply.js"]
  .map((f) => readFileSync(join(CCF, f), "utf8"))
  .join("\n");
const YES = "export function vote (proposal, proposerId) { return true }";

interface Tree {
  name: string;
  round(): void;
  calls: number;
}

async function load(name: string, root: string): Promise<Tree> {
  const from = (path: string) => import(pathToFileURL(join(root, path)).href);
  const gov = await from("src/gov/index.ts");
  const js = await from("src/js/index.ts");
  const kv = await from("src/kv/index.ts");
  const ledger = await from("src/ledger/index.ts");
  const crypto = await from("src/crypto/index.ts");
  const { Tables, SINGLETON_KEY, utf8, writeJson } = ledger;
  const engine = await js.createJsEngine({
    env: { now: () => Date.now(), randomBytes: (n: number) => new Uint8Array(n) },
  });
  const constitution = js.jsConstitution(engine, () => ({}));
  const member = await crypto.createIdentityCertificate({
    name: "m0",
    now: new Date(),
    serial: new Uint8Array([1]),
  });
  const user = await crypto.createIdentityCertificate({
    name: "u0",
    now: new Date(),
    serial: new Uint8Array([2]),
  });
  const memberId = crypto.certFingerprint(member.certPem);
  const store = new kv.Store();
  const setup = store.begin();
  setup.map(Tables.constitution).set(SINGLETON_KEY, utf8(SOURCE));
  writeJson(setup, Tables.serviceInfo, SINGLETON_KEY, { status: "Open", cert: member.certPem });
  writeJson(setup, Tables.serviceConfig, SINGLETON_KEY, { recovery_threshold: 1 });
  writeJson(setup, Tables.signatures, SINGLETON_KEY, { root: "ab".repeat(32) });
  setup.map(Tables.membersCerts).set(utf8(memberId), utf8(member.certPem));
  writeJson(setup, Tables.membersInfo, utf8(memberId), { status: "Active" });
  store.commit(setup);
  let n = 0;
  const tree: Tree = {
    name,
    calls: 0,
    round() {
      n++;
      const digest = new Uint8Array(32);
      new DataView(digest.buffer).setUint32(0, n);
      digest[31] = name.length;
      let tx = store.begin();
      const created = gov.createProposal(tx, constitution, {
        memberId,
        body: utf8(
          JSON.stringify({ actions: [{ name: "set_user", args: { cert: user.certPem, user_data: { n } } }] }),
        ),
        requestDigest: digest,
      });
      store.commit(tx);
      tx = store.begin();
      const view = gov.submitBallot(tx, constitution, {
        memberId,
        proposalId: created.proposalId,
        body: utf8(JSON.stringify({ ballot: YES })),
      });
      store.commit(tx);
      if (view.proposalState !== "Accepted") throw new Error(`${name}: ${JSON.stringify(view)}`);
      tree.calls += 5;
    },
  };
  tree.round(); // the first call of a tree builds its context: not counted
  return tree;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const trees = [await load("head", HEAD)];
if (values.base) trees.unshift(await load("base", resolve(values.base)));
const perRound = new Map<string, number[]>(trees.map((t) => [t.name, []]));
for (let block = 0; block < BLOCKS; block++) {
  // Alternate which tree goes first.
  const order = block % 2 === 0 ? trees : [...trees].reverse();
  for (const tree of order) {
    const start = cpuUs();
    for (let i = 0; i < ROUNDS; i++) tree.round();
    perRound.get(tree.name)!.push((cpuUs() - start) / ROUNDS);
  }
}
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
console.log(`${BLOCKS} blocks of ${ROUNDS} rounds (5 constitution calls each); CPU us per round`);
for (const [name, xs] of perRound) {
  const s = sorted(xs);
  const median = s[Math.floor(s.length / 2)]!;
  console.log(
    `${name}: median ${median.toFixed(0)} us per round (${(median / 5).toFixed(0)} per call), min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)}`,
  );
}
