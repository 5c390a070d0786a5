/**
 * Container guardrails (api/policy-routes.ts): policy layers per installation, team and/or
 * environment, and exemptions.
 */
import type { BerthClient } from './client.ts';
import type { EffectivePolicy, Exemption, GuardKey, GuardPolicy } from '../core/guard.ts';

export interface PolicyLayerView {
  team: string;
  env: string;
  scope: string;
  version: number;
  policy: GuardPolicy;
  setBy: string;
  setAt: number;
}
export type ExemptionView = Exemption & { status: 'active' | 'expired' | 'revoked' };
export interface PoliciesView {
  layers: PolicyLayerView[];
  effective?: { team: string; env: string; policy: EffectivePolicy['policy']; from: Record<string, string>; shown: Record<string, string> };
}

export function getPolicies(c: BerthClient, q: { team?: string; env?: string; app?: string; history?: boolean } = {}) {
  const qs = new URLSearchParams();
  if (q.team !== undefined) qs.set('team', q.team);
  if (q.env !== undefined) qs.set('env', q.env);
  if (q.app !== undefined) qs.set('app', q.app);
  if (q.history) qs.set('history', 'true');
  const s = qs.toString();
  return c.request<PoliciesView>('GET', `/v1/policies${s ? `?${s}` : ''}`);
}
export function setGuardPolicy(c: BerthClient, team: string, env: string, policy: GuardPolicy) {
  return c.request<{ layer: PolicyLayerView }>('PUT', '/v1/policies', { team, env, policy });
}
export function listExemptions(c: BerthClient, app?: string) {
  return c.request<{ exemptions: ExemptionView[] }>('GET', `/v1/exemptions${app ? `?app=${encodeURIComponent(app)}` : ''}`);
}
export function addExemption(c: BerthClient, body: { app: string; service?: string; env: string; key: GuardKey; reason: string; expires: string }) {
  return c.request<{ exemption: ExemptionView }>('POST', '/v1/exemptions', body);
}
export function revokeExemption(c: BerthClient, id: string) {
  return c.request<{ exemption: ExemptionView; revoked: boolean }>('DELETE', `/v1/exemptions/${encodeURIComponent(id)}`);
}
