import { useState } from "preact/hooks";
import { type ConsoleError, type Proposal, post } from "../api.ts";
import { ErrorBox } from "../components.tsx";
import { errorOf, useStored } from "../state.ts";

type Field = {
  name: string;
  label: string;
  kind: "text" | "pem" | "number" | "json" | "date" | "file";
  optional?: boolean;
};

/** The common actions, as forms. Arguments are those of CCF's and Coco's default constitutions. */
const ACTIONS: Array<{ id: string; label: string; action: string; fields: Field[] }> = [
  {
    id: "add_user",
    label: "Add a user",
    action: "set_user",
    fields: [
      { name: "cert", label: "Certificate (PEM)", kind: "pem" },
      { name: "user_data", label: "User data (JSON)", kind: "json", optional: true },
    ],
  },
  {
    id: "remove_user",
    label: "Remove a user",
    action: "remove_user",
    fields: [{ name: "user_id", label: "User id", kind: "text" }],
  },
  {
    id: "add_member",
    label: "Add a member",
    action: "set_member",
    fields: [
      { name: "cert", label: "Certificate (PEM)", kind: "pem" },
      {
        name: "encryption_pub_key",
        label: "Encryption public key (PEM, recovery members)",
        kind: "pem",
        optional: true,
      },
      { name: "member_data", label: "Member data (JSON)", kind: "json", optional: true },
    ],
  },
  {
    id: "remove_member",
    label: "Remove a member",
    action: "remove_member",
    fields: [{ name: "member_id", label: "Member id", kind: "text" }],
  },
  {
    id: "trust_node",
    label: "Trust a node",
    action: "transition_node_to_trusted",
    fields: [
      { name: "node_id", label: "Node id", kind: "text" },
      { name: "valid_from", label: "Certificate valid from", kind: "date" },
      { name: "validity_period_days", label: "Validity (days)", kind: "number", optional: true },
    ],
  },
  {
    id: "retire_node",
    label: "Retire a node",
    action: "remove_node",
    fields: [{ name: "node_id", label: "Node id", kind: "text" }],
  },
  {
    id: "recovery_threshold",
    label: "Set the recovery threshold",
    action: "set_recovery_threshold",
    fields: [{ name: "recovery_threshold", label: "Shares needed", kind: "number" }],
  },
  {
    id: "renew_nodes",
    label: "Renew all node certificates",
    action: "set_all_nodes_certificate_validity",
    fields: [
      { name: "valid_from", label: "Valid from", kind: "date" },
      { name: "validity_period_days", label: "Validity (days)", kind: "number", optional: true },
    ],
  },
  {
    id: "renew_service",
    label: "Renew the service certificate",
    action: "set_service_certificate_validity",
    fields: [
      { name: "valid_from", label: "Valid from", kind: "date" },
      { name: "validity_period_days", label: "Validity (days)", kind: "number", optional: true },
    ],
  },
  {
    id: "js_app",
    label: "Install a JS app",
    action: "set_js_app",
    fields: [{ name: "bundle", label: "Bundle (bundle.json: metadata and modules)", kind: "file" }],
  },
];

/** ASN.1 time for valid_from, as the constitutions expect: 20261207000000Z. */
function asn1Time(date: string): string {
  return `${date.replaceAll("-", "")}000000Z`;
}

function buildArgs(fields: Field[], values: Record<string, string>): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const f of fields) {
    const fallback = f.kind === "date" ? new Date().toISOString().slice(0, 10) : "";
    const raw = (values[f.name] ?? fallback).trim();
    if (!raw) {
      if (f.optional) continue;
      throw new Error(`${f.label} is required`);
    }
    if (f.kind === "number") {
      if (!/^[0-9]+$/.test(raw)) throw new Error(`${f.label} must be a whole number`);
      args[f.name] = Number(raw);
    } else if (f.kind === "json" || f.kind === "file") {
      try {
        args[f.name] = JSON.parse(raw);
      } catch (e) {
        throw new Error(`${f.label} is not JSON: ${(e as Error).message}`);
      }
    } else if (f.kind === "date") {
      args[f.name] = asn1Time(raw);
    } else if (f.kind === "pem") {
      if (!raw.startsWith("-----BEGIN")) throw new Error(`${f.label} must be PEM (-----BEGIN ...)`);
      args[f.name] = `${raw}\n`;
    } else args[f.name] = raw;
  }
  return args;
}

export function ProposalForm({ onCreated }: { onCreated: (p: Proposal) => void }) {
  const [mode, setMode] = useStored<"form" | "json">("proposal-mode", "form");
  const [kind, setKind] = useStored("proposal-kind", "add_user");
  const [values, setValues] = useStored<Record<string, string>>("proposal-values", {});
  const [json, setJson] = useStored(
    "proposal-json",
    '{\n  "actions": [\n    { "name": "set_recovery_threshold", "args": { "recovery_threshold": 1 } }\n  ]\n}',
  );
  const [error, setError] = useState<ConsoleError>();
  const [busy, setBusy] = useState(false);
  const spec = ACTIONS.find((a) => a.id === kind) ?? ACTIONS[0]!;
  const today = new Date().toISOString().slice(0, 10);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    let proposal: unknown;
    try {
      proposal =
        mode === "json"
          ? JSON.parse(json)
          : { actions: [{ name: spec.action, args: buildArgs(spec.fields, values) }] };
    } catch (err) {
      setError({
        what: "Prepare the proposal",
        code: "InvalidInput",
        message: (err as Error).message,
        action: "Fix the field and submit again.",
        status: 400,
      });
      return;
    }
    setBusy(true);
    try {
      const created = await post<Proposal>("/api/gov/proposals", proposal, "Create the proposal");
      if (mode === "form") setValues({});
      onCreated(created);
    } catch (err) {
      setError(errorOf("Create the proposal", err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} data-testid="proposal-form">
      <div class="row">
        <label>
          <input type="radio" name="mode" checked={mode === "form"} onChange={() => setMode("form")} /> Common
          action
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === "json"} onChange={() => setMode("json")} /> Raw
          JSON
        </label>
      </div>
      {mode === "form" ? (
        <>
          <label>
            <span class="field-label">Action</span>
            <select
              value={kind}
              onChange={(e) => setKind((e.target as HTMLSelectElement).value)}
              name="action-kind"
            >
              {ACTIONS.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.label} ({a.action})
                </option>
              ))}
            </select>
          </label>
          {spec.fields.map((f) => (
            <div class="field" key={f.name}>
              <span class="field-label">
                {f.label}
                {f.optional ? " (optional)" : ""}
              </span>
              {f.kind === "pem" || f.kind === "json" || f.kind === "file" ? (
                <>
                  {f.kind === "file" && (
                    <input
                      type="file"
                      accept=".json,application/json"
                      onChange={async (e) => {
                        const file = (e.target as HTMLInputElement).files?.[0];
                        if (file) setValues({ ...values, [f.name]: await file.text() });
                      }}
                    />
                  )}
                  <textarea
                    name={f.name}
                    rows={f.kind === "pem" ? 5 : 4}
                    value={values[f.name] ?? ""}
                    onInput={(e) =>
                      setValues({ ...values, [f.name]: (e.target as HTMLTextAreaElement).value })
                    }
                  />
                </>
              ) : f.kind === "date" ? (
                <input
                  name={f.name}
                  type="date"
                  value={values[f.name] ?? today}
                  onInput={(e) => setValues({ ...values, [f.name]: (e.target as HTMLInputElement).value })}
                />
              ) : (
                <input
                  name={f.name}
                  type="text"
                  value={values[f.name] ?? ""}
                  onInput={(e) => setValues({ ...values, [f.name]: (e.target as HTMLInputElement).value })}
                  size={f.kind === "text" ? 70 : 12}
                />
              )}
            </div>
          ))}
        </>
      ) : (
        <textarea
          name="proposal-json"
          rows={10}
          value={json}
          onInput={(e) => setJson((e.target as HTMLTextAreaElement).value)}
        />
      )}
      <ErrorBox error={error} />
      <button class="primary" type="submit" disabled={busy} data-testid="propose">
        {busy ? "Proposing…" : "Propose"}
      </button>
    </form>
  );
}
