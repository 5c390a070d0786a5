/**
 * server: the composition root. Parses configuration once, picks concrete adapters, wires the
 * controllers and loops, and starts the API.
 */
export { startServer, type RunningServer, type ServerInfo } from './server.ts';
export { VERSION } from '../core/version.ts';
export { loadConfig, parseLogLevel, DEFAULT_DATA_DIR, DEFAULT_LISTEN, type ServerConfig, type ServerFlags } from './config.ts';
// The concrete logger is the composition root's to pick; `berth server` gets it from here.
export { createLogger } from '../lib/logger.ts';
// `berth edge`: the ingress on an edge host, fed by the control plane.
export { loadEdgeConfig, startEdgeAgent, type EdgeFlags, type EdgeConfigParsed } from './edge.ts';
