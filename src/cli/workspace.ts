import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import type { NetworkFile } from "./network-file.ts";

/**
 * The workspace `coco sandbox` writes (service certificate, member and user keys, network.json),
 * found so that commands work from wherever the user is: `$COCO_WORKSPACE` if set, else the
 * current directory if it is one, else its `workspace/` subdirectory, else the same two checks
 * in each parent directory.
 */
export function findWorkspace(cwd = process.cwd(), env = process.env): string | undefined {
  if (env.COCO_WORKSPACE) return resolve(cwd, env.COCO_WORKSPACE);
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const candidate of [dir, join(dir, "workspace")]) {
      if (isWorkspace(candidate)) return candidate;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function isWorkspace(dir: string): boolean {
  return existsSync(join(dir, "network.json")) || existsSync(join(dir, "service_cert.pem"));
}

/** A path in the workspace as the user would type it from the current directory. */
export function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

export function readNetwork(workspace: string): NetworkFile | undefined {
  try {
    return JSON.parse(readFileSync(join(workspace, "network.json"), "utf8")) as NetworkFile;
  } catch {
    return undefined;
  }
}

/** The sandbox's name for the node at `host:port` (`node0`, ...), from network.json's order. */
export function nodeName(network: NetworkFile | undefined, address: string): string | undefined {
  const i = network?.nodes.findIndex((n) => n.rpc_address === address) ?? -1;
  return i >= 0 ? `node${i}` : undefined;
}

/** The URL to talk to when none is given: the primary network.json names, else the first node. */
export function defaultUrl(network: NetworkFile | undefined): string | undefined {
  const node = network?.nodes.find((n) => n.id === network.primary) ?? network?.nodes[0];
  return node ? `https://${node.rpc_address}` : undefined;
}

/** Whether something accepts TCP connections at `host:port` (within `timeoutMs`). */
export function listening(address: string, timeoutMs = 500): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.split(":").pop())];
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/** A failure to reach a node at all (as opposed to an answer from it). */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code ?? "";
  return [
    "ECONNREFUSED",
    "ECONNRESET",
    "EHOSTUNREACH",
    "ENOTFOUND",
    "ETIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_SOCKET",
  ].includes(code);
}

/**
 * One line saying which node could not be reached and what to do: the nodes of network.json that
 * do accept connections (pass one with `--url`), or that none does (start the sandbox).
 */
export async function unreachableMessage(url: string, e: unknown, workspace: string | undefined) {
  const address = url.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  const network = workspace ? readNetwork(workspace) : undefined;
  const name = nodeName(network, address);
  const code = (e as { code?: string }).code ?? (e as Error).message;
  const head = `cannot reach ${name ? `${name} at ` : ""}${url} (${code})`;
  if (!network) return `${head}; is the node running? Choose another with --url`;
  const others = network.nodes.filter((n) => n.rpc_address !== address);
  const live = (
    await Promise.all(others.map(async (n) => ((await listening(n.rpc_address)) ? n.rpc_address : undefined)))
  ).filter((a): a is string => a !== undefined);
  const from = shownPath(join(workspace!, "network.json"));
  if (live.length === 0) {
    return `${head}; no node in ${from} answers: is the sandbox running (npm start)?`;
  }
  const list = live.map((a) => `https://${a} (${nodeName(network, a)})`).join(", ");
  return `${head}; nodes in ${from} that answer: ${list}. Try --url https://${live[0]}`;
}
