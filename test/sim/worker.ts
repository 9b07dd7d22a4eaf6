/**
 * A child process of `npm run sim -- --jobs N`: runs the seeds it is sent, one at a time, and
 * sends each result back. Seeds are independent, so running them in several processes changes no
 * result; every seed still replays alone with `--seed`. (Processes, not worker threads: threads
 * of one process contend for OpenSSL's locks, and the simulator signs and verifies a lot.)
 */
import { runSeed, type SimOptions } from "./world.ts";

if (!process.send) throw new Error("test/sim/worker.ts runs as a child process of test/sim/cli.ts");
process.on("message", (options: SimOptions | "done") => {
  if (options === "done") {
    process.disconnect();
    return;
  }
  process.send!(runSeed(options));
});
