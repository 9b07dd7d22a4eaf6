/** `<workspace>/network.json`: what the sandbox started, for the CLI and for people. */
export interface NetworkFile {
  service_cert: string;
  primary: string;
  nodes: Array<{
    id: string;
    rpc_address: string;
    node_address: string;
    pid: number;
    ledger_dir: string;
    config: string;
  }>;
}
