import type { ComponentChildren } from "preact";
import type { ConsoleError } from "./api.ts";

/** An error as people expect it: what failed, why, and what to do. */
export function ErrorBox({ error, onRetry }: { error: ConsoleError | undefined; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div class="error" role="alert" data-code={error.code}>
      <strong>{error.what} failed.</strong>
      <div>
        Why: {error.message} <code>{error.code}</code>
      </div>
      <div>What to do: {error.action}</div>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section>
      <header class="section-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Short({ id, length = 12 }: { id: string | null | undefined; length?: number }) {
  if (!id) return <span class="muted">none</span>;
  return (
    <code title={id} class="id">
      {id.length > length ? `${id.slice(0, length)}…` : id}
    </code>
  );
}

export function Badge({ value }: { value: string | null | undefined }) {
  const v = value ?? "unknown";
  return <span class={`badge badge-${v.toLowerCase().replace(/[^a-z]/g, "")}`}>{v}</span>;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  const days = Math.round((d.getTime() - Date.now()) / 86_400_000);
  return `${d.toISOString().slice(0, 10)} (${days >= 0 ? `in ${days} days` : `${-days} days ago`})`;
}
