/**
 * What the logged-in person may do, as the API decides it (core/auth.ts `allows`, the same rule the
 * server applies): pages show an action only to who may take it. The team owning each app comes from
 * GET /v1/teams (the teams the person has a role in). The server still decides: a refused action
 * shows its message.
 */
import { allows, type Action } from '../../src/core/auth.ts';
import { api, knownSession } from './api.ts';
import { listTeams } from '../../src/client/auth-client.ts';
import { useData } from './ui.tsx';

export type Can = (action: Action, target?: { app: string; env?: string; team?: string }) => boolean;

export function isOwner(): boolean {
  return allows(knownSession()?.grants ?? [], 'cluster.admin');
}

/** `can(action, {app, env})`; false until the teams are known (an action appears once it is sure). */
export function useCan(): Can {
  const teams = useData(() => listTeams(api()), 'can-teams');
  const who = knownSession();
  return (action, target) => {
    const grants = who?.grants ?? [];
    if (!target) return allows(grants, action);
    const team = target.team ?? teams.data?.teams.find((t) => t.apps.includes(target.app))?.name;
    return allows(grants, action, { app: target.app, team, ...(target.env ? { env: target.env } : {}) });
  };
}
