import { type Command, InvalidArgumentError } from "commander";
import type { ConsoleServer } from "../console/index.ts";

export interface ConsoleCommandOptions {
  dir: string;
  cert?: string;
  key?: string;
  encryptionKey?: string;
  serviceCert?: string;
  node?: string[];
  host: string;
  port: number;
  allowRemote?: boolean;
}

/** The port the console tries first; a free one is picked when it is taken. */
export const DEFAULT_CONSOLE_PORT = 9000;

async function listen(
  start: (port: number) => Promise<ConsoleServer>,
  port: number,
  fallback: boolean,
): Promise<ConsoleServer> {
  try {
    return await start(port);
  } catch (e) {
    if (fallback && (e as NodeJS.ErrnoException).code === "EADDRINUSE") return start(0);
    throw e;
  }
}

function portNumber(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new InvalidArgumentError("must be a port number from 1 to 65535");
  }
  return Number(value);
}

/** `coco console [options]`: registered by main.ts. */
export function registerConsoleCommand(program: Command): void {
  program
    .command("console")
    .description("serve the web console for one member on 127.0.0.1 (docs/console.md)")
    .option(
      "--dir <workspace>",
      "a sandbox workspace: member0's files, service_cert.pem, network.json",
      "workspace",
    )
    .option("--cert <pem>", "the member's certificate (default: the workspace's member0)")
    .option("--key <pem>", "the member's private key: it stays in this process")
    .option("--encryption-key <pem>", "the member's recovery share key, to submit its share")
    .option("--service-cert <pem>", "the service certificate (pins every node)")
    .option("--node <host:port...>", "node RPC addresses (default: the workspace's network.json)")
    .option("--host <address>", "the address to listen on", "127.0.0.1")
    .option("--port <port>", "the port to listen on", portNumber, DEFAULT_CONSOLE_PORT)
    .option("--allow-remote", "serve non-loopback clients too, behind a login token")
    .action(async (opts: ConsoleCommandOptions) => {
      const server = await consoleCommand(opts);
      const stop = () => server.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}

/** `coco console`: the identity from explicit files, or from a sandbox workspace's member0. */
export async function consoleCommand(opts: ConsoleCommandOptions): Promise<ConsoleServer> {
  const { loadIdentity, sandboxIdentityFiles, startConsole } = await import("../console/index.ts");
  const sandbox = sandboxIdentityFiles(opts.dir);
  const identity = loadIdentity({
    cert: opts.cert ?? sandbox.cert,
    key: opts.key ?? sandbox.key,
    ...((opts.encryptionKey ?? sandbox.encryptionKey)
      ? { encryptionKey: opts.encryptionKey ?? sandbox.encryptionKey }
      : {}),
    serviceCert: opts.serviceCert ?? sandbox.serviceCert,
    nodes: opts.node ?? [],
    ...(sandbox.network ? { network: sandbox.network } : {}),
  });
  const server = await listen(
    (port) => startConsole({ identity, host: opts.host, port, allowRemote: opts.allowRemote === true }),
    opts.port,
    false,
  );
  console.log(`Coco console for member ${identity.memberId.slice(0, 12)}... (${identity.subject})`);
  console.log(`  open ${server.url}`);
  if (server.token) console.log("  the URL carries the console's login token: share it with no one");
  console.log("  it holds the member's key; the browser never sees it. Ctrl-C stops it.");
  return server;
}

/** The sandbox's console (started by `coco sandbox` unless --no-console), for member0. */
export async function startSandboxConsole(
  workspace: string,
  port: number,
  print: (line: string) => void,
): Promise<ConsoleServer> {
  const { loadIdentity, sandboxIdentityFiles, startConsole } = await import("../console/index.ts");
  const identity = loadIdentity(sandboxIdentityFiles(workspace));
  const server = await listen((p) => startConsole({ identity, port: p }), port, true);
  print(`Console (member0, in your browser): ${server.url}`);
  print("");
  return server;
}
