/**
 * client: the typed HTTP client of the Berth API, shared by the CLI and the web portal.
 */
export * from './client.ts';
