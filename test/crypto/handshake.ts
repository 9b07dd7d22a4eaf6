import type { AddressInfo } from "node:net";
import tls from "node:tls";

export interface Outcome {
  error?: NodeJS.ErrnoException;
  /** Whether the server saw a client certificate that chains to its `ca`. */
  serverAuthorized?: boolean;
  peerDer?: Uint8Array;
}

/** One TLS connection on 127.0.0.1; resolves once the client got the server's greeting or failed. */
export async function handshake(
  serverOpts: tls.TlsOptions,
  clientOpts: tls.ConnectionOptions,
): Promise<Outcome> {
  const outcome: Outcome = {};
  const server = tls.createServer(serverOpts, (socket) => {
    outcome.serverAuthorized = socket.authorized;
    const peer = socket.getPeerCertificate();
    if (peer?.raw) outcome.peerDer = new Uint8Array(peer.raw);
    socket.end("ok");
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const client = tls.connect({ host: "127.0.0.1", port, ...clientOpts });
      let greeted = false;
      client.on("data", () => {
        greeted = true;
      });
      client.on("error", (err) => {
        outcome.error = err;
      });
      client.on("close", () => {
        if (!greeted && !outcome.error) outcome.error = Object.assign(new Error("closed without greeting"));
        resolve();
      });
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return outcome;
}
