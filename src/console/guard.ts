import { timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { consoleError } from "./errors.ts";

export const TOKEN_COOKIE = "coco_console_token";
/** Sent by the console's own pages on every write: a cross-site form or image cannot set it. */
export const WRITE_HEADER = "x-coco-console";

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of String(req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

/**
 * Who may use the console. The console acts with a member's key, so it must not be usable by
 * anyone else:
 * - by default only loopback clients are served; with `allowRemote` any address may connect but
 *   must present the console's token (a cookie set by `/login?token=`, or `Authorization: Bearer`);
 * - the Host header must name the console itself (defeats DNS rebinding, where a web page's own
 *   host name is made to point at 127.0.0.1);
 * - writes must be JSON with the console's header, and an Origin, if sent, must be the console's:
 *   another site open in the same browser cannot make the console sign anything.
 */
export function guard(opts: { allowRemote: boolean; token: string | undefined; hosts: Set<string> }) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const refuse = (status: number, code: string, message: string) =>
      reply.status(status).send({ error: consoleError("Use the console", status, code, message) });
    if (!opts.allowRemote && !isLoopback(req.socket.remoteAddress)) {
      return refuse(
        403,
        "NotLoopback",
        "this console serves only this machine (start it with --allow-remote)",
      );
    }
    if (!opts.hosts.has(String(req.headers.host ?? "").toLowerCase())) {
      return refuse(
        421,
        "WrongHost",
        `this console does not serve the host ${JSON.stringify(req.headers.host)}`,
      );
    }
    if (opts.token !== undefined) {
      const path = req.url.split("?")[0];
      if (path === "/login") return; // checked by the login route itself
      const bearer = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
      const given = cookie(req, TOKEN_COOKIE) ?? bearer;
      if (!given || !sameToken(given, opts.token)) {
        if (req.method === "GET" && !path?.startsWith("/api/")) {
          return reply
            .status(401)
            .type("text/html")
            .send(
              "<p>This Coco console needs its login token: open the URL it printed (<code>/login?token=...</code>).</p>",
            );
        }
        return refuse(
          401,
          "LoginRequired",
          "open the URL the console printed, which carries its login token",
        );
      }
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      const origin = req.headers.origin;
      if (origin !== undefined && !opts.hosts.has(origin.replace(/^https?:\/\//, "").toLowerCase())) {
        return refuse(403, "CrossOrigin", `writes from ${origin} are refused`);
      }
      if (
        req.headers[WRITE_HEADER] !== "1" ||
        !String(req.headers["content-type"]).startsWith("application/json")
      ) {
        return refuse(403, "CrossOrigin", "writes must come from the console's own pages");
      }
    }
  };
}

export function loginHandler(token: string) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const given = String((req.query as { token?: string }).token ?? "");
    if (!sameToken(given, token)) {
      return reply.status(401).type("text/html").send("<p>Wrong or missing token.</p>");
    }
    reply.header(
      "set-cookie",
      `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
    );
    return reply.redirect("/");
  };
}
