import { Command, InvalidArgumentError } from "commander";
import type { ServiceCurve } from "../crypto/index.ts";
import { registerConsoleCommand } from "./console.ts";
import { CliError } from "./fail.ts";
import { packageVersion } from "./repo.ts";

function positiveInt(value: string): number {
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError("must be a positive integer");
  return Number(value);
}

function serviceCurve(value: string): ServiceCurve {
  if (value !== "secp384r1" && value !== "secp256r1") {
    throw new InvalidArgumentError("must be secp384r1 or secp256r1");
  }
  return value;
}

function port(value: string): number {
  const n = positiveInt(value);
  if (n > 65535) throw new InvalidArgumentError("must be a port number from 1 to 65535");
  return n;
}

const program = new Command("coco")
  .description("Coco: a confidential consortium ledger")
  .version(packageVersion(), "-V, --version", "print the version")
  .showHelpAfterError();

program
  .command("start")
  .description("start a node from a JSON config file")
  .requiredOption("--config <file>", "start configuration (JSON)")
  .option(
    "--wait-for <file>",
    "load the code, then wait (up to 2 minutes) for this file, e.g. the service certificate a joiner needs, before starting",
  )
  .action(async (opts: { config: string; waitFor?: string }) => {
    const { startCommand } = await import("./start.ts");
    await startCommand(opts);
  });

program
  .command("recover")
  .description("start a new service from a copy of a lost service's ledger (disaster recovery)")
  .requiredOption("--config <file>", "start configuration (JSON) with a recover section")
  .action(async (opts: { config: string }) => {
    const { startCommand } = await import("./start.ts");
    await startCommand({ ...opts, mode: "recover" });
  });

program
  .command("sandbox")
  .description("start a local network, opened and ready, with member and user credentials")
  .option("--dir <workspace>", "workspace directory", "workspace")
  .option("--nodes <n>", "number of nodes", positiveInt, 3)
  .option("--port <port>", "RPC port of the first node", port, 8000)
  .option("--evm", "also serve Ethereum JSON-RPC at /app/eth on every node (docs/ethereum.md)")
  .option("--sawtooth-port <port>", "serve Sawtooth: processors of node i connect to this port + i", port)
  .option("--js-app <dir>", "build (where needed) and install this JS app once the network is open")
  .option("--console-port <port>", "the web console's port (docs/console.md)", port, 9000)
  .option("--no-console", "do not start the web console")
  .option("--verbose", "also show the nodes' logs here (they are always in <workspace>/node<N>/node.log)")
  .option("--no-restart", "leave a node that exits down (by default the sandbox starts it again)")
  .option(
    "--curve <curve>",
    "curve of the service and node keys of a new network: secp384r1 (default) or secp256r1 (cheaper signatures)",
    serviceCurve,
  )
  .action(
    async (opts: {
      dir: string;
      nodes: number;
      port: number;
      evm?: boolean;
      sawtoothPort?: number;
      jsApp?: string;
      console: boolean;
      consolePort: number;
      verbose?: boolean;
      restart: boolean;
      curve?: ServiceCurve;
    }) => {
      const { startSandbox } = await import("./sandbox.ts");
      const { console: withConsole, consolePort, restart, ...rest } = opts;
      let stopping = false;
      let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        // Before the sandbox is up, the stop waits for it (below); a second signal ends at once.
        sandbox?.stop().then(() => process.exit(0));
      };
      // Listening before the start: a signal that arrives between "open" being printed and the
      // start returning would otherwise end this process and leave its nodes running.
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      sandbox = await startSandbox({
        ...rest,
        watch: { restart },
        ...(withConsole ? { console: { port: consolePort } } : {}),
      });
      if (stopping) {
        await sandbox.stop();
        process.exit(0);
      }
      await sandbox.allDown;
      if (stopping) return;
      console.error("coco: every node of the sandbox is down");
      process.exit(1);
    },
  );

registerConsoleCommand(program);

program
  .command("keygen")
  .description("write a key and certificate for a member or user: <name>_cert.pem, <name>_privk.pem")
  .argument("<role>", "member or user")
  .argument("<name>", "identity name, e.g. member1")
  .option("--dir <dir>", "output directory", ".")
  .option("--encryption-key", "members: also an RSA-3072 encryption key pair, making a recovery member")
  .action(async (role: string, name: string, opts: { dir: string; encryptionKey?: boolean }) => {
    const { keygen, encryptionKeygen } = await import("./keygen.ts");
    const written = await keygen(role, name, opts.dir);
    console.log(`wrote ${written.cert} and ${written.key} (id ${written.id})`);
    if (opts.encryptionKey) {
      if (role !== "member") throw new CliError("only members hold recovery shares (--encryption-key)");
      const enc = await encryptionKeygen(name, opts.dir);
      console.log(`wrote ${enc.publicKey} and ${enc.privateKey} (recovery share encryption)`);
    }
  });

const receipt = program.command("receipt").description("work with transaction receipts");
receipt
  .command("verify")
  .description("verify a JSON or COSE receipt offline with the service certificate")
  .argument("<receipt>", "receipt file")
  .requiredOption("--service-cert <pem>", "the service certificate")
  .action(async (file: string, opts: { serviceCert: string }) => {
    const { verifyReceiptFile } = await import("./receipt.ts");
    const result = verifyReceiptFile(file, opts.serviceCert);
    if (result.ok) {
      console.log(`receipt OK${result.txid ? ` for ${result.txid}` : ""}: Merkle root ${result.root}`);
    } else {
      console.error(`receipt INVALID (${result.check} check failed): ${result.message}`);
      process.exitCode = 1;
    }
  });

const attestation = program
  .command("attestation")
  .description("decode and verify AMD SEV-SNP attestation reports")
  // Usage errors in this group exit 2, so scripts can tell them from an invalid report (1).
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
attestation
  .command("verify")
  .description("verify a report against its VCEK -> ASK -> ARK chain and AMD's bundled roots")
  .argument("<report>", "the 1184-byte report file")
  .option("--chain <pem>", "PEM file with the VCEK (or VLEK), ASK and ARK")
  .option("--crl <file>", "AMD's CRL for the product (PEM or DER)")
  .option("--product <name>", "require this product: Milan, Genoa or Turin")
  .option("--measurement <hex>", "the expected launch measurement (48 bytes)")
  .option("--report-data <hex>", "the expected report data (64 bytes)")
  .option("--json", "print the decoded report and every check as JSON")
  .action(async (file: string, opts: import("./attestation.ts").VerifyOptions) => {
    const { verifyAttestation } = await import("./attestation.ts");
    process.exitCode = verifyAttestation(file, opts, { out: console.log, err: console.error });
  });
attestation
  .command("show")
  .description("decode a report without verifying it")
  .argument("<report>", "the 1184-byte report file")
  .option("--json", "print the fields as JSON")
  .action(async (file: string, opts: { json?: boolean }) => {
    const { showAttestation } = await import("./attestation.ts");
    process.exitCode = showAttestation(file, opts, { out: console.log, err: console.error });
  });
attestation
  .command("verify-node")
  .description("fetch a running node's attestation and check it binds the TLS key the node presented")
  .argument("<url>", "the node, e.g. https://127.0.0.1:8000")
  .requiredOption("--service-cert <pem>", "the service certificate (pins the node's TLS certificate)")
  .option("--measurement <hex>", "the expected measurement (48 bytes for snp, 32 for virtual)")
  .option("--allow-virtual", "accept a virtual (development, insecure) node instead of exiting 1")
  .option("--json", "print the outcome and every check as JSON")
  .action(async (url: string, opts: import("./attestation-node.ts").VerifyNodeOptions) => {
    const { verifyNode } = await import("./attestation-node.ts");
    process.exitCode = await verifyNode(url, opts, { out: console.log, err: console.error });
  });

const gov = program
  .command("gov")
  .description("governance: signed proposals, ballots and withdrawals")
  .addHelpText(
    "after",
    "\nWhat is not given comes from the workspace: $COCO_WORKSPACE, else the current directory or its\n" +
      "workspace/ subdirectory (or a parent's): the primary in its network.json, service_cert.pem, member0.",
  );
const govOptions = (command: Command) =>
  command
    .option("--url <url>", "any node of the service (default: the workspace's primary)")
    .option("--service-cert <pem>", "the service certificate (default: the workspace's)")
    .option("--cert <pem>", "the member's certificate (default: the workspace's member0)")
    .option("--key <pem>", "the member's private key, which signs every request (default: member0's)");
const printJson = (value: unknown) => console.log(JSON.stringify(value, null, 2));
govOptions(
  gov
    .command("propose")
    .description("make a proposal: a JSON file with {actions: [...]}, or one action by name")
    .argument("<file|action>", "proposal file, or an action name such as set_recovery_threshold")
    .option("--args <json>", "the action's arguments, with an action name")
    .option("-q, --quiet", "print only the proposal's id (for scripts: id=$(coco gov propose ... -q))"),
).action(async (target: string, opts: import("./gov.ts").GovOptions & { args?: string; quiet?: boolean }) => {
  const { outcomeExitCode, propose } = await import("./gov.ts");
  const proposal = await propose(target, opts.args, opts);
  if (opts.quiet) console.log(proposal.proposalId);
  else printJson(proposal);
  process.exitCode = outcomeExitCode(proposal);
});
govOptions(
  gov
    .command("vote")
    .description("vote on a proposal")
    .argument("<proposal-id>")
    .option("--accept", "vote for it")
    .option("--reject", "vote against it")
    .option("--ballot <file.js>", "a ballot script: export function vote (proposal, proposerId) {...}"),
).action(
  async (
    id: string,
    opts: import("./gov.ts").GovOptions & { accept?: boolean; reject?: boolean; ballot?: string },
  ) => {
    const { ballotFrom, outcomeExitCode, vote } = await import("./gov.ts");
    const proposal = await vote(id, ballotFrom(opts), opts);
    printJson(proposal);
    process.exitCode = outcomeExitCode(proposal);
  },
);
govOptions(
  gov.command("withdraw").description("withdraw your open proposal").argument("<proposal-id>"),
).action(async (id: string, opts: import("./gov.ts").GovOptions) => {
  const { withdraw } = await import("./gov.ts");
  printJson(await withdraw(id, opts));
});
govOptions(
  gov.command("show").description("a proposal's state, votes and actions").argument("<proposal-id>"),
).action(async (id: string, opts: import("./gov.ts").GovOptions) => {
  const { show } = await import("./gov.ts");
  printJson(await show(id, opts));
});
govOptions(
  gov
    .command("submit-share")
    .description("recovery: fetch your encrypted share, decrypt it locally and submit it")
    .requiredOption("--encryption-key <pem>", "your encryption private key (<name>_enc_privk.pem)"),
).action(async (opts: import("./gov.ts").GovOptions & { encryptionKey: string }) => {
  const { submitShare } = await import("./gov.ts");
  printJson(await submitShare(opts));
});
govOptions(
  gov.command("activate").description("acknowledge the state digest: an Accepted member becomes Active"),
).action(async (opts: import("./gov.ts").GovOptions) => {
  const { activate } = await import("./gov.ts");
  printJson(await activate(opts));
});

const app = program.command("app").description("JS applications");
govOptions(
  app
    .command("install")
    .description(
      "build (where needed) a JS app directory and propose set_js_app; vote for it unless --no-vote",
    )
    .argument(
      "<dir>",
      "the app: a package.json build script writing dist/bundle.json, a bundle.json, or app.json + src/",
    )
    .option("--no-vote", "only propose"),
).action(async (dir: string, opts: import("./gov.ts").GovOptions & { vote: boolean }) => {
  const { installAppCommand } = await import("./gov.ts");
  printJson(await installAppCommand(dir, opts));
});

const ledger = program.command("ledger").description("read and audit ledger directories");
ledger
  .command("read")
  .description("print transactions (private maps only with --node-dir, which holds the ledger secrets)")
  .argument("<dir>", "ledger directory")
  .option("--node-dir <dir>", "the node's directory, to decrypt private maps with its sealed ledger secrets")
  .option("--json", "one JSON object per line")
  .action(async (dir: string, opts: { nodeDir?: string; json?: boolean }) => {
    const { readLedger } = await import("./ledger.ts");
    await readLedger(dir, opts, (line) => console.log(line));
  });
ledger
  .command("audit")
  .description("verify every signature and Merkle root; reports the first inconsistency")
  .argument("<dir>", "ledger directory")
  .requiredOption("--service-cert <pem>", "the service certificate")
  .option("--json", "print the report as JSON")
  .action(async (dir: string, opts: { serviceCert: string; json?: boolean }) => {
    const { auditLedgerDir } = await import("./ledger.ts");
    const report = await auditLedgerDir(dir, opts.serviceCert);
    if (opts.json) console.log(JSON.stringify(report));
    else if (report.ok) {
      console.log(
        `ledger OK: ${report.transactions} transactions, ${report.signatures} signatures, verified through seqno ${report.verifiedThrough}` +
          (report.lastSignature
            ? ` (last signature ${report.lastSignature.view}.${report.lastSignature.seqno})`
            : "") +
          (report.unsignedTail ? `; ${report.unsignedTail} newer entries not yet signed` : ""),
      );
    } else {
      const f = report.failure!;
      console.error(
        `ledger INVALID at ${f.seqno === null ? "an unreadable entry" : `seqno ${f.seqno}`}${f.file ? ` (${f.file})` : ""}: ${f.message}`,
      );
    }
    if (!report.ok) process.exitCode = 1;
  });

/** Help marks the options a command cannot do without. */
function markRequired(command: Command): void {
  for (const option of command.options) {
    if (option.mandatory && !option.description.endsWith("(required)")) option.description += " (required)";
  }
  for (const sub of command.commands) markRequired(sub);
}
markRequired(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const known = e instanceof CliError || (e as Error).constructor?.name?.endsWith("Error");
  console.error(`coco: ${(e as Error).message}`);
  if (!known) console.error(e);
  process.exit(1);
}
