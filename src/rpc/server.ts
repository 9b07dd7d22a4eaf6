import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server as TlsServer } from "node:tls";
import fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import type { Logger } from "pino";
import type { ExecutorRegistry } from "../apps/index.ts";
import { TX_HEADER } from "./answers.ts";
import { takeAppRequest } from "./app-direct.ts";
import { registerAttestationRoutes } from "./attestation.ts";
import { handshakeTimeoutMs, limitConnections } from "./connection-limits.ts";
import { fastifyErrorCode, sendError } from "./errors.ts";
import { AppEntry, appHandler, serveForwardedCalls } from "./forwarding.ts";
import { registerGovRoutes } from "./gov.ts";
import { clientErrorHandler, repeatedQueryParameter } from "./http-checks.ts";
import { registerLedgerReadRoutes } from "./ledger-read.ts";
import { registerOperatorRoutes } from "./operator.ts";
import type { RpcNode } from "./port.ts";
import { CLIENT_TLS_POLICY } from "./tls-policy.ts";

/**
 * The node's HTTPS endpoint. TLS uses the node certificate (endorsed by the service, so clients
 * pin only service_cert.pem) and asks every client for a certificate; which certificates are
 * accepted is decided per endpoint by its authentication policies, not by the handshake.
 */
export function createRpcServer(
  node: RpcNode,
  executors: ExecutorRegistry,
  log: Logger,
  tls: { key: string; cert: string },
  /**
   * `directApp: false` leaves every `/app` request to fastify; by default the common ones are
   * answered on node:http directly (src/rpc/app-direct.ts), with the same bytes.
   */
  options: { directApp?: boolean } = {},
): FastifyInstance {
  const limits = node.settings;
  // Every /app answer names a transaction, even one refused before routing (e.g. too large).
  const nameState = (url: string, reply: FastifyReply) => {
    if (url.startsWith("/app")) reply.header(TX_HEADER, node.currentTxId());
  };
  const server = fastify({
    https: {
      key: tls.key,
      cert: tls.cert,
      requestCert: true,
      rejectUnauthorized: false,
      ...CLIENT_TLS_POLICY,
      handshakeTimeout: handshakeTimeoutMs(limits),
      // Clients that offer ALPN name the HTTP version they speak; HTTP/1.0 clients
      // (`curl --http1.0`) offer only "http/1.0", and a server without it refuses the handshake.
      ALPNProtocols: ["http/1.1", "http/1.0"],
    },
    // Idle connections close after this; keep-alive announces the same, so clients stop reusing
    // a connection before the node closes it.
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    bodyLimit: node.settings.maxBodyBytes,
    logger: false,
    // Answered below in Coco's error shape (fastify's own 503 has another).
    return503OnClosing: false,
    // Requests Node's HTTP parser refuses (malformed, headers too large), and URLs the router
    // cannot decode, also get Coco's error shape; other connection errors (a failed or timed-out
    // TLS handshake, a reset) close the connection unanswered.
    clientErrorHandler: clientErrorHandler(log),
    frameworkErrors: (error, req, reply) => {
      const status = (error as { statusCode?: number }).statusCode ?? 400;
      nameState(req.url, reply);
      return sendError(reply, status, fastifyErrorCode(status), error.message);
    },
    // Stopping closes idle keep-alive connections at once; those with a request under way get
    // the stop's grace (src/node/run.ts), then are cut.
    forceCloseConnections: "idle",
  });
  limitConnections(server.server as unknown as TlsServer, limits, log);
  server.removeAllContentTypeParsers();
  server.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  let closing = false;
  // The framework's own routes under /app/ (e.g. /app/tx), which the direct path leaves to fastify.
  const frameworkRoutes = new Set<string>();
  let frameworkPatterns = false;
  server.addHook("onRoute", (route) => {
    if (!route.url.startsWith("/app/") || route.url === "/app/*") return;
    if (/[:*]/.test(route.url)) frameworkPatterns = true;
    for (const method of [route.method].flat()) frameworkRoutes.add(`${method} ${route.url}`);
  });
  server.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  server.addHook("onRequest", (req, reply, done) => {
    if (closing) {
      reply.header("connection", "close");
      sendError(reply, 503, "NodeStopping", "this node is stopping; retry on another node");
      return;
    }
    const repeated = repeatedQueryParameter(req.url);
    if (repeated !== undefined) {
      nameState(req.url, reply);
      sendError(
        reply,
        400,
        "InvalidQueryParameterValue",
        `query parameter ${JSON.stringify(repeated)} is given more than once; give it once`,
      );
      return;
    }
    done();
  });
  server.setErrorHandler((error: Error & { statusCode?: number }, req, reply) => {
    nameState(req.url, reply);
    const status = error.statusCode ?? 500;
    if (status >= 500) log.error({ err: error }, "request failed");
    return sendError(
      reply,
      status,
      fastifyErrorCode(status),
      status >= 500 ? "internal error" : error.message,
    );
  });
  server.setNotFoundHandler((req, reply) => {
    nameState(req.url, reply);
    return sendError(reply, 404, "ResourceNotFound", `no endpoint ${req.method} ${req.url.split("?")[0]}`);
  });

  registerOperatorRoutes(server, node);
  registerGovRoutes(server, node);
  registerAttestationRoutes(server, node);
  registerLedgerReadRoutes(server, node);
  if (executors.size > 0) {
    const entry = new AppEntry(node, executors, log);
    server.all("/app/*", appHandler(entry));
    serveForwardedCalls(node, executors, log);
    if (options.directApp !== false) {
      const edge = { closing: () => closing, frameworkRoutes };
      const routing = server.routing;
      const raw = server.server;
      raw.removeListener("request", routing);
      // With a parametric framework route under /app/ the direct path could not tell its requests
      // apart cheaply: fastify then takes them all.
      raw.on("request", (req: IncomingMessage, res: ServerResponse) => {
        if (frameworkPatterns || !takeAppRequest(req, res, edge, entry, node, log)) routing(req, res);
      });
    }
  }
  return server;
}
