/**
 * ingress: Berth's HTTP data plane. Turns the route table (which hosts and paths go to which healthy
 * instances) into an nginx config, tests the candidate with `nginx -t` before swapping it in, reloads
 * nginx at most once per coalescing window and only when the bytes changed, and waits until the new
 * workers serve. Backend changes alone (instances joining, leaving) go to nginx's Lua balancer without
 * a reload when Debian's Lua modules are there (lua.ts); the files on disk stay the source of truth.
 * nginx runs daemonized from its own prefix directory and outlives the control plane:
 * a restarted Berth adopts the running master instead of restarting it.
 */
export { NginxIngress, type NginxIngressOptions } from './nginx-ingress.ts';
export { renderNginxConfig, renderBackends, planConfig, parseGeneration, checkRoutes, type RenderOptions, type RouteProblem } from './render.ts';
export { stopNginx, findMaster } from './nginx-process.ts';
export { cutConnections, cutFilter, type CutTarget } from './cut-connections.ts';
export { EdgeFeed } from './edge-feed.ts';
export { EdgeAgent, httpEdgeFetch, checkEdgeConfig, EdgeHttpError, type EdgeAgentOptions, type EdgeState, type EdgePoll, type EdgeFetch } from './edge-agent.ts';
