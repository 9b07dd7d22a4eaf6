export class NodeError extends Error {}
