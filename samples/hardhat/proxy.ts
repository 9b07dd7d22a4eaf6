/**
 * A local JSON-RPC proxy for tools that cannot present a TLS client certificate (Hardhat's HTTP
 * provider): it listens on plain HTTP on the loopback address and forwards each POST body to
 * Coco's `/app/eth` over TLS, pinning the service certificate and presenting a Coco user's client
 * certificate. Every forwarded call asks to be answered on commit (`x-coco-wait: commit`).
 *
 *   npx tsx samples/hardhat/proxy.ts --target https://127.0.0.1:8000/app/eth \
 *     --ca workspace/service_cert.pem --cert workspace/user0_cert.pem --key workspace/user0_privk.pem \
 *     [--listen 127.0.0.1:8545]
 *
 * Whoever can reach the listening port acts as that Coco user: it only ever listens on a
 * loopback address.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";

export interface ProxyOptions {
  /** Coco's Ethereum endpoint, e.g. `https://127.0.0.1:8000/app/eth`. */
  target: string;
  /** PEM: the service certificate (the only CA), and the Coco user's certificate and key. */
  ca: string;
  cert: string;
  key: string;
  /** Loopback host and port to listen on (port 0: any free one). */
  host?: string;
  port?: number;
}

export interface RunningProxy {
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 8 * 1024 * 1024;
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function startCocoProxy(options: ProxyOptions): Promise<RunningProxy> {
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK.has(host))
    throw new Error(`the proxy acts as a Coco user: listen on loopback only, not ${host}`);
  const target = new URL(options.target);
  if (target.protocol !== "https:") throw new Error("the target must be https://");
  const dispatcher = new Agent({ connect: { ca: options.ca, cert: options.cert, key: options.key } });
  const server: Server = createServer((req, res) => {
    forward(req, res, target, dispatcher).catch((e: Error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: `proxy: ${e.message}` } }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8545, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dispatcher.close();
    },
  };
}

async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  dispatcher: Agent,
): Promise<void> {
  if (req.method !== "POST") {
    res.writeHead(405, { allow: "POST" }).end();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      res.writeHead(413).end();
      return;
    }
    chunks.push(chunk as Buffer);
  }
  const upstream = await request(target, {
    method: "POST",
    dispatcher,
    headers: { "content-type": "application/json", "x-coco-wait": "commit" },
    body: Buffer.concat(chunks),
  });
  const body = Buffer.from(await upstream.body.arrayBuffer());
  res.writeHead(upstream.statusCode, {
    "content-type": String(upstream.headers["content-type"] ?? "application/json"),
  });
  res.end(body);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: "string" },
      ca: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      listen: { type: "string", default: "127.0.0.1:8545" },
    },
  });
  for (const name of ["target", "ca", "cert", "key"] as const) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  const at = values.listen!.lastIndexOf(":");
  const proxy = await startCocoProxy({
    target: values.target!,
    ca: readFileSync(values.ca!, "utf8"),
    cert: readFileSync(values.cert!, "utf8"),
    key: readFileSync(values.key!, "utf8"),
    host: values.listen!.slice(0, at).replace(/^\[|\]$/g, ""),
    port: Number(values.listen!.slice(at + 1)),
  });
  console.log(`forwarding ${proxy.url} -> ${values.target}`);
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
