/**
 * Container guardrails in the server: the deploy path (deployments, promotion, push) checks every
 * spec with the stored policy and exemptions (core/guard.ts); the API does the same for a manual
 * rollback and warns in `status` of exemptions that no longer hold.
 */
export { exemptionWarnings, guardrails } from '../core/guard.ts';
