import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type ConsoleError } from "./api.ts";

/**
 * Where the person is lives in the URL (`#/ledger?from=40&tx=2.45`), and drafts live in local
 * storage, so a reload or a shared link loses nothing. No key is ever stored: the browser has none.
 */
export interface Route {
  page: string;
  params: URLSearchParams;
}

function parse(): Route {
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, query] = hash.split("?");
  return { page: page || "network", params: new URLSearchParams(query ?? "") };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onHash = () => setRoute(parse());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

export function href(page: string, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return `#/${page}${s ? `?${s}` : ""}`;
}

/** Changes the URL's parameters for the current page (kept in history, so Back works). */
export function setParams(page: string, params: Record<string, string | undefined>): void {
  location.hash = href(page, params);
}

/** A value kept in local storage under `coco-console:<key>`. */
export function useStored<T>(key: string, initial: T): [T, (value: T) => void] {
  const full = `coco-console:${key}`;
  const [value, setValue] = useState<T>(() => {
    try {
      const text = localStorage.getItem(full);
      return text === null ? initial : (JSON.parse(text) as T);
    } catch {
      return initial;
    }
  });
  const set = useCallback(
    (next: T) => {
      setValue(next);
      try {
        localStorage.setItem(full, JSON.stringify(next));
      } catch {}
    },
    [full],
  );
  return [value, set];
}

export interface Loaded<T> {
  data: T | undefined;
  error: ConsoleError | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads with `load`, again every `everyMs` if given; keeps the last good data through errors. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ConsoleError>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      const mine = ++latest.current;
      try {
        const value = await load();
        if (stopped || mine !== latest.current) return;
        setData(value);
        setError(undefined);
      } catch (e) {
        if (stopped || mine !== latest.current) return;
        setError(e instanceof ApiError ? e.detail : errorOf("Load the page", e));
      } finally {
        if (!stopped) setLoading(false);
      }
      if (!stopped && everyMs) timer = setTimeout(run, everyMs);
    };
    setLoading(true);
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}

export function errorOf(what: string, e: unknown): ConsoleError {
  if (e instanceof ApiError) return e.detail;
  return {
    what,
    code: "Error",
    message: (e as Error).message,
    action: "Reload the page and try again.",
    status: 0,
  };
}
