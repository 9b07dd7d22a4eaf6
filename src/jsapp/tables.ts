import { GovTables } from "../gov/index.ts";

/** The governance tables JS apps live in (names as CCF's, see src/gov/tables.ts). */
export const JsAppTables = {
  modules: GovTables.modules,
  endpoints: GovTables.endpoints,
  runtimeOptions: GovTables.jsRuntimeOptions,
  interpreterFlush: GovTables.interpreterFlush,
  usersInfo: GovTables.usersInfo,
  membersInfo: GovTables.membersInfo,
} as const;

/** CCF's key for single-row tables: eight zero bytes. */
export const SINGLETON_KEY = new Uint8Array(8);
