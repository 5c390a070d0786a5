/**
 * Typed calls of the container guardrails (api/policy-routes.ts), from the OpenAPI document: policy
 * layers per installation, team and/or environment, and exemptions.
 */
import type { BerthClient, Body, Ok } from './client.ts';

/** One stored policy layer (a version of it). */
export type PolicyLayerView = Ok<'/v1/policies', 'get'>['layers'][number];
export type PoliciesView = Ok<'/v1/policies', 'get'>;
/** A layer's fields: each one given tightens or loosens that key; absent ones inherit. */
export type GuardPolicyBody = Body<'/v1/policies', 'put'>['policy'];
export type ExemptionView = Ok<'/v1/exemptions', 'get'>['exemptions'][number];
export type ExemptionBody = Body<'/v1/exemptions', 'post'>;

export function getPolicies(c: BerthClient, q: { team?: string; env?: string; app?: string; history?: boolean } = {}) {
  const { history, ...rest } = q;
  return c.call('get', '/v1/policies', { query: { ...rest, ...(history ? { history: 'true' as const } : {}) } });
}
export function setGuardPolicy(c: BerthClient, team: string, env: string, policy: GuardPolicyBody) {
  return c.call('put', '/v1/policies', { body: { team, env, policy } });
}
export function listExemptions(c: BerthClient, app?: string) {
  return c.call('get', '/v1/exemptions', { query: app !== undefined ? { app } : {} });
}
export function addExemption(c: BerthClient, body: ExemptionBody) {
  return c.call('post', '/v1/exemptions', { body });
}
export function revokeExemption(c: BerthClient, id: string) {
  return c.call('delete', '/v1/exemptions/{id}', { path: { id } });
}
