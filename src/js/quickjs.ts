// The process-wide QuickJS WebAssembly module: loaded once, replaced only if it crashes.
import * as variant from "@jitl/quickjs-wasmfile-release-sync";
import { newQuickJSWASMModuleFromVariant, type QuickJSWASMModule } from "quickjs-emscripten-core";

/**
 * A loaded module and its generation. When a host-level exception (Node's own stack overflow,
 * an emscripten abort) escapes from inside the WebAssembly code, the module's memory may be
 * inconsistent, so it is abandoned whole and a fresh one is loaded under the next generation.
 */
export interface QuickJs {
  readonly module: QuickJSWASMModule;
  readonly generation: number;
}

let current: QuickJs | undefined;
let loading: Promise<QuickJs> | undefined;
let generation = 0;

function load(): Promise<QuickJs> {
  // The namespace import holds the variant as `default`, which the loader unwraps.
  loading ??= newQuickJSWASMModuleFromVariant(Promise.resolve(variant)).then(
    (module) => {
      generation += 1;
      current = { module, generation };
      loading = undefined;
      return current;
    },
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** Resolves with a usable module, loading it on first use or after a crash. */
export function readyQuickJs(): Promise<QuickJs> {
  return current === undefined ? load() : Promise.resolve(current);
}

/** The usable module, or undefined while a replacement is loading. */
export function currentQuickJs(): QuickJs | undefined {
  return current;
}

/** Abandons the module of `gen` (if still current) and starts loading a replacement. */
export function abandonQuickJs(gen: number): void {
  if (current === undefined || current.generation !== gen) return;
  current = undefined;
  // A failed reload is retried by the next readyQuickJs(); nothing to report here.
  load().catch(() => undefined);
}
