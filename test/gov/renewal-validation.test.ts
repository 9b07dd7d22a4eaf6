import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CocoClientError, type GovClient } from "../../src/client/index.ts";
import { budget } from "../e2e/waits.ts";
import {
  govClient,
  passProposal,
  startTestNetwork,
  type TestNetwork,
  validFrom,
} from "../helpers/network.ts";

/**
 * Certificate renewals that could never be served are refused when proposed, under Coco's
 * constitution and under CCF's unmodified one; a renewal the node does not serve yet shows in
 * /node/state.
 */

const CCF = new URL("../../../shared/vectors/ccf/", import.meta.url);
const hasVectors = existsSync(new URL("constitution-default/actions.js", CCF));
const ccfConstitution = ["actions.js", "validate.js", "resolve.js", "apply.js"].map((f) =>
  fileURLToPath(new URL(`constitution-default/${f}`, CCF)),
);

const DAY = 86_400_000;

for (const [label, settings] of [
  ["Coco's constitution", {}],
  ["CCF's constitution", { constitution: ccfConstitution }],
] as const) {
  describe(`certificate renewal windows under ${label}`, {
    skip: label.startsWith("CCF") && !hasVectors && "no vectors",
  }, () => {
    let net: TestNetwork;
    let gov: GovClient;
    before(async () => {
      net = await startTestNetwork({ ...settings });
      gov = govClient(`https://127.0.0.1:${net.running.port}`, net.serviceCertPem, net.identities.member);
      await gov.activate();
    });
    after(async () => {
      await gov?.close();
      await net?.cleanup();
    });

    async function refused(name: string, args: Record<string, unknown>): Promise<string> {
      const error = await gov.propose({ actions: [{ name, args }] }).catch((e: unknown) => e);
      assert.ok(
        error instanceof CocoClientError,
        `${name} ${JSON.stringify(args)} was not refused: ${String(error)}`,
      );
      assert.equal(error.status, 400);
      assert.equal(error.code, "ProposalFailedToValidate");
      const state = (await net.call("GET", "/node/state")).json() as { certificates_not_served: unknown };
      assert.equal(state.certificates_not_served, null);
      return error.message;
    }

    test("a valid_from already past, a window already over, a validity above the maximum: refused", async () => {
      const nodeId = net.running.node.nodeId;
      const twoDaysAgo = validFrom(new Date(Date.now() - 2 * DAY));
      assert.match(
        await refused("set_service_certificate_validity", {
          valid_from: twoDaysAgo,
          validity_period_days: 30,
        }),
        /already past/,
      );
      assert.match(
        await refused("set_node_certificate_validity", {
          node_id: nodeId,
          valid_from: validFrom(new Date(Date.now() - 40 * DAY)),
          validity_period_days: 30,
        }),
        /ended before now/,
      );
      assert.match(
        await refused("set_all_nodes_certificate_validity", {
          valid_from: validFrom(),
          validity_period_days: 400,
        }),
        /400 is more than the 365 days/,
      );
    });

    test("a window starting now is served at once; one starting tomorrow shows as not served yet", async () => {
      const nodeId = net.running.node.nodeId;
      await passProposal(gov, "set_node_certificate_validity", {
        node_id: nodeId,
        valid_from: validFrom(),
        validity_period_days: 20,
      });
      const expected = Date.now() + 20 * DAY;
      let state: Record<string, unknown> = {};
      // Polls for an idle machine's 5 s, stretched by the load (as below).
      for (const end = Date.now() + budget(5_000); Date.now() < end; ) {
        state = (await net.call("GET", "/node/state")).json();
        if (Math.abs(Date.parse(String(state.node_certificate_valid_to)) - expected) < DAY) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        Math.abs(Date.parse(String(state.node_certificate_valid_to)) - expected) < DAY,
        JSON.stringify(state),
      );
      assert.equal(state.certificates_not_served, null);

      await passProposal(gov, "set_node_certificate_validity", {
        node_id: nodeId,
        valid_from: validFrom(new Date(Date.now() + DAY)),
        validity_period_days: 20,
      });
      let notServed: { reason?: string; served_once_valid?: boolean } | null = null;
      for (const end = Date.now() + budget(5_000); !notServed && Date.now() < end; ) {
        notServed = (await net.call("GET", "/node/state")).json().certificates_not_served;
        if (!notServed) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(notServed, "the difference between the ledger and the served certificate shows");
      assert.equal(notServed.served_once_valid, true);
      assert.match(String(notServed.reason), /not valid before/);
    });
  });
}
