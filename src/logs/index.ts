/**
 * logs: reading containers' output. For now straight from the engine; a persistent store later.
 */
export { readAppLogs, type TaggedLine } from './container-logs.ts';
