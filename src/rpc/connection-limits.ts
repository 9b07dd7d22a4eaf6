import type { IncomingMessage, ServerResponse } from "node:http";
import { isIPv6, type Socket } from "node:net";
import type { Server as TlsServer } from "node:tls";
import type { Logger } from "pino";

/** Bounds on client connections, from `rpc.maxConnectionsPerAddress` and `rpc.idleTimeoutMs`. */
export interface ConnectionLimits {
  maxConnectionsPerAddress: number;
  idleTimeoutMs: number;
}

/**
 * An idle connection is closed this long after the idle timeout it announces (`Keep-Alive:
 * timeout=`). Clients retire a kept-alive connection a moment before the announced time, but a
 * client whose event loop stalls (a loaded machine) can send its next request just after it; were
 * the node to close exactly on time, that request would be reset unread, and the client could not
 * tell whether it ran. With the grace the node is always the later one to give up.
 */
export const IDLE_CLOSE_GRACE_MS = 5_000;

/** A TLS handshake that takes longer than this (or the idle timeout, if shorter) is cut. */
const MAX_HANDSHAKE_MS = 10_000;

export function handshakeTimeoutMs(limits: ConnectionLimits): number {
  return Math.min(MAX_HANDSHAKE_MS, limits.idleTimeoutMs);
}

/**
 * The address connections are counted under: IPv4 as is (an IPv4-mapped IPv6 address is its IPv4
 * address), IPv6 by its /64 prefix, since one host is routinely given a whole /64.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = "", tail = ""] = address.toLowerCase().split("%")[0]!.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/**
 * Applies the per-address cap and the idle timeout to an HTTPS server (fastify's, with its
 * `connectionTimeout` and `keepAliveTimeout` set to the idle timeout).
 *
 * - A connection beyond an address's cap is closed as soon as it is accepted, before any TLS
 *   work, so one client cannot hold the node's sockets and file descriptors.
 * - A connection with no request under way and no traffic for the idle timeout is closed (one
 *   that never sends a request too), IDLE_CLOSE_GRACE_MS after the announced time. A request
 *   under way is never cut by this: its own bounds (commit wait, forwarding timeout, Node's
 *   headers and request timeouts) apply instead.
 */
export function limitConnections(server: TlsServer, limits: ConnectionLimits, log: Logger): void {
  const open = new Map<string, number>();
  let refused = 0;
  let lastWarning = 0;
  server.prependListener("connection", (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    const count = open.get(key) ?? 0;
    if (count >= limits.maxConnectionsPerAddress) {
      refused++;
      // One line per 10 s at most: a flood must not become a log flood.
      if (Date.now() - lastWarning > 10_000) {
        lastWarning = Date.now();
        log.warn(
          { address: key, limit: limits.maxConnectionsPerAddress, refusedSoFar: refused },
          "refused client connections over the per-address limit",
        );
      }
      socket.destroy();
      return;
    }
    open.set(key, count + 1);
    socket.once("close", () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });

  // Requests under way, per connection.
  const busy = new WeakMap<object, number>();
  // Idle connections already given their grace (see IDLE_CLOSE_GRACE_MS).
  const graced = new WeakSet<object>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    graced.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once("close", () => busy.set(socket, Math.max(0, (busy.get(socket) ?? 1) - 1)));
  });
  // Node's HTTP server emits this when a connection has been silent for `server.timeout`; with a
  // listener here it leaves the decision to us instead of destroying the socket itself.
  server.on("timeout", (socket: Socket) => {
    if ((busy.get(socket) ?? 0) > 0) return;
    if (graced.has(socket)) {
      socket.destroy();
      return;
    }
    graced.add(socket);
    socket.setTimeout(IDLE_CLOSE_GRACE_MS);
  });
}
