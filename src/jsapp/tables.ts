import { Tables as GovTables, SINGLETON_KEY } from "../ledger/index.ts";

/** The governance tables JS apps live in (names as CCF's, see src/ledger/tables.ts). */
export const JsAppTables = {
  modules: GovTables.modules,
  endpoints: GovTables.endpoints,
  runtimeOptions: GovTables.jsRuntimeOptions,
  interpreterFlush: GovTables.interpreterFlush,
  usersInfo: GovTables.usersInfo,
  membersInfo: GovTables.membersInfo,
} as const;

/** CCF's key for single-row tables. */
export { SINGLETON_KEY };
