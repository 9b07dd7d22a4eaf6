import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import fastify from "fastify";
import { registerApi } from "./api.ts";
import { Gateway } from "./gateway.ts";
import { guard, isLoopback, loginHandler } from "./guard.ts";
import type { ConsoleIdentity } from "./identity.ts";
import { NetworkMonitor } from "./monitor.ts";

/** The built front end (npm run build:console, run by npm install). */
export const CONSOLE_DIST = fileURLToPath(new URL("../../console/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export interface ConsoleOptions {
  identity: ConsoleIdentity;
  /** 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Serve other addresses than loopback; then every request needs the console's login token. */
  allowRemote?: boolean;
  /** How often the Network page's data is refreshed from the nodes (ms). */
  pollMs?: number;
  /** Where the built front end is (tests may point elsewhere). */
  distDir?: string;
}

export interface ConsoleServer {
  /** Where to point a browser (with the login token in it when one is needed). */
  url: string;
  /** The address it listens on. */
  origin: string;
  token: string | undefined;
  close(): Promise<void>;
}

export async function startConsole(opts: ConsoleOptions): Promise<ConsoleServer> {
  const host = opts.host ?? "127.0.0.1";
  const remote = opts.allowRemote === true;
  if (!remote && !isLoopback(host) && host !== "localhost") {
    throw new Error(
      `--host ${host} is not a loopback address: add --allow-remote (a login token will be required)`,
    );
  }
  const token = remote ? randomBytes(24).toString("base64url") : undefined;
  const dist = opts.distDir ?? CONSOLE_DIST;
  const gateway = new Gateway(opts.identity);
  const monitor = new NetworkMonitor(gateway, opts.pollMs ?? 500);
  const server = fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, forceCloseConnections: true });
  const hosts = new Set<string>();
  server.addHook("onRequest", async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  server.addHook("onRequest", guard({ allowRemote: remote, token, hosts }));
  server.addHook("onSend", async (req, reply) => {
    if (req.url.startsWith("/api/")) reply.header("cache-control", "no-store");
  });
  if (token) server.get("/login", loginHandler(token));
  registerApi(server, gateway, monitor);
  server.get("/api/*", async (req, reply) =>
    reply.status(404).send({
      error: {
        what: "Use the console",
        code: "ResourceNotFound",
        message: `no ${req.url}`,
        action: "Reload the page.",
        status: 404,
      },
    }),
  );
  server.get("/*", async (req, reply) => {
    const path = decodeURIComponent(req.url.split("?")[0] ?? "/");
    const file = normalize(join(dist, path));
    const inside = file.startsWith(dist.endsWith(sep) ? dist : dist + sep);
    const target = inside && extname(file) && existsSync(file) ? file : join(dist, "index.html");
    if (!existsSync(target)) {
      return reply
        .status(503)
        .type("text/html")
        .send("<p>The console's pages are not built. Run <code>npm run build:console</code> and reload.</p>");
    }
    // Hashed asset names change with their content: cache them; never cache the page itself.
    reply.header(
      "cache-control",
      target.includes(`${sep}assets${sep}`) ? "max-age=31536000, immutable" : "no-store",
    );
    return reply.type(TYPES[extname(target)] ?? "application/octet-stream").send(readFileSync(target));
  });
  await server.listen({ host, port: opts.port });
  const address = server.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  for (const name of [host, "127.0.0.1", "localhost", "[::1]"]) hosts.add(`${name}:${port}`.toLowerCase());
  monitor.start();
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    origin,
    url: token ? `${origin}/login?token=${token}` : `${origin}/`,
    token,
    close: async () => {
      await monitor.stop();
      await server.close();
      await gateway.close();
    },
  };
}
