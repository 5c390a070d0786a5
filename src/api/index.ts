/**
 * api: the HTTP API (fastify). Validates input, writes desired state, enqueues reconcilers; maps
 * domain errors to HTTP statuses in one place.
 */
export { buildApi, type ApiDeps } from './app.ts';
export type { ServiceStatus, InstanceStatus } from './status.ts';
