export { PRIVATE_MAPS } from "./groups.ts";
export { PRIVATE_METHODS, PRIVATE_PRIMARY_METHODS, privateContext } from "./methods.ts";
export { TESSERA_KEY } from "./parties.ts";
export { TESSERA_PATH, tesseraEndpoints } from "./tessera.ts";
