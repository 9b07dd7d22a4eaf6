import { useEffect, useState } from "preact/hooks";
import { type ConsoleError, get, type LedgerEntry, type Session } from "./api.ts";
import { ErrorBox } from "./components.tsx";
import { MerklePath } from "./merkle.tsx";
import { type JsonReceipt, type Verification, verifyReceipt } from "./receipt.ts";
import { errorOf } from "./state.ts";

/** Fetches a committed transaction's receipt and checks it here, in the browser, with WebCrypto. */
export function ReceiptPanel({ entry, session }: { entry: LedgerEntry; session: Session }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<ConsoleError>();
  const [result, setResult] = useState<Verification>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setText("");
    setResult(undefined);
    setError(undefined);
  }, [entry.transaction_id]);

  const verify = async (source: string) => {
    setResult(undefined);
    setError(undefined);
    let receipt: JsonReceipt;
    try {
      receipt = JSON.parse(source) as JsonReceipt;
    } catch (e) {
      setError({
        what: "Read the receipt",
        code: "InvalidInput",
        message: `not JSON: ${(e as Error).message}`,
        action: "Fetch it again.",
        status: 400,
      });
      return;
    }
    setResult(
      await verifyReceipt(receipt, session.serviceCertificate, {
        txid: entry.transaction_id,
        writeSetDigest: entry.write_set_digest,
        commitEvidenceDigest: entry.commit_evidence_digest,
      }),
    );
  };

  const fetchReceipt = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const { receipt } = await get<{ receipt: JsonReceipt }>(
        `/api/ledger/receipt?txid=${entry.transaction_id}`,
        "Fetch the receipt",
      );
      const pretty = JSON.stringify(receipt, null, 2);
      setText(pretty);
      await verify(pretty);
    } catch (e) {
      setError(errorOf("Fetch the receipt", e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div data-testid="receipt-panel">
      <h3>Receipt</h3>
      <p class="small muted">
        Checked in this browser with WebCrypto against the pinned service certificate: leaf, Merkle path, the
        node's signature over the root, and the node's endorsement by the service.
      </p>
      <div class="row">
        <button
          type="button"
          class="primary"
          onClick={fetchReceipt}
          disabled={busy || entry.status !== "Committed"}
          data-testid="fetch-receipt"
        >
          {busy ? "Fetching…" : "Fetch and verify receipt"}
        </button>
        {text && (
          <button type="button" onClick={() => verify(text)} data-testid="verify-receipt">
            Verify the text below
          </button>
        )}
        {entry.status !== "Committed" && (
          <span class="muted small">receipts exist once a transaction is committed</span>
        )}
      </div>
      <ErrorBox error={error} />
      {result && (
        <div class={result.ok ? "ok" : "error"} data-testid="receipt-result" data-ok={String(result.ok)}>
          <strong>{result.ok ? "Receipt verified." : "Receipt refused."}</strong>
          <ul class="small">
            {result.checks.map((c) => (
              <li key={c.name}>
                {c.ok ? "✔" : "✘"} {c.name}: {c.detail}
              </li>
            ))}
          </ul>
        </div>
      )}
      {result?.leaf && result.root && (
        <MerklePath leaf={result.leaf} steps={result.steps} root={result.root} ok={result.ok} />
      )}
      {text && (
        <textarea
          rows={12}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          name="receipt"
          spellcheck={false}
        />
      )}
    </div>
  );
}
