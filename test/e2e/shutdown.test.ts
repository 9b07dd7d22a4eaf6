import { test } from "node:test";
import { connect } from "node:tls";
import { budget, waitUntil, withNetwork } from "./harness.ts";

test("SIGTERM stops a node promptly even while a client holds a connection with no request on it", {
  timeout: budget(60_000),
}, async () => {
  await withNetwork(1, async (net) => {
    const node = net.nodes[0]!;
    const [host, port] = node.rpc.split(":");
    const socket = connect({ host, port: Number(port), ca: net.serviceCertPem });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", resolve);
        socket.once("error", reject);
      });
      process.kill(node.pid, "SIGTERM");
      await waitUntil(`${node.name} to exit on SIGTERM`, 5_000, () => !net.isRunning(node), 50);
    } finally {
      socket.destroy();
    }
  });
});
