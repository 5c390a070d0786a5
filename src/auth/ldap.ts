import { Client, InvalidCredentialsError } from 'ldapts';
import { ldapDnValue, ldapFilterValue, type ExternalIdentity, type LdapSettings } from '../core/sso.ts';
import { EngineUnavailable, Unauthorized } from '../core/errors.ts';

const WRONG = 'wrong user name or password';

/**
 * Logs a person in against an LDAP directory (ldapts): finds their DN (a template, or a search as the
 * service account), binds as them with their password — the directory checks it, Berth never sees a
 * hash — then reads their groups (a `groupOfNames`/`posixGroup` search, or their `memberOf`). The user
 * name is escaped for a DN or a filter wherever it goes; an empty password is refused before any bind
 * (an LDAP "unauthenticated bind" with a DN and no password succeeds on many servers and proves nothing).
 */
export class LdapDirectory {
  constructor(private readonly o: { settings: LdapSettings; bindPassword: string; timeoutMs?: number }) {}

  async login(username: string, password: string): Promise<ExternalIdentity> {
    if (password === '' || username === '') throw new Unauthorized(WRONG);
    const s = this.o.settings;
    const timeout = this.o.timeoutMs ?? 10_000;
    const tlsOptions = { ...(s.caPem ? { ca: [s.caPem] } : {}), minVersion: 'TLSv1.2' as const };
    const client = new Client({ url: s.url, timeout, connectTimeout: timeout, ...(s.url.startsWith('ldaps:') ? { tlsOptions } : {}) });
    try {
      try {
        if (s.startTls) await client.startTLS(tlsOptions);
      } catch (err) {
        throw new EngineUnavailable(`the LDAP directory ${s.url} refused StartTLS or its certificate: ${(err as Error).message}`);
      }
      let dn: string;
      let entry: Record<string, unknown> = {};
      if (s.userDn) {
        dn = s.userDn.split('{user}').join(ldapDnValue(username));
      } else {
        await this.call(() => client.bind(s.bindDn, this.o.bindPassword), 'the service account (ldap.bindDn) could not bind');
        const filter = s.userSearchFilter.split('{user}').join(ldapFilterValue(username));
        const found = await this.call(() => client.search(s.userSearchBase, { scope: 'sub', filter, sizeLimit: 2, attributes: ['dn', s.mailAttribute, 'memberOf'] }),
          'the user search failed');
        // None, or more than one: no login (a filter that matches two people names nobody).
        if (found.searchEntries.length !== 1) throw new Unauthorized(WRONG);
        dn = found.searchEntries[0]!.dn;
        entry = found.searchEntries[0]! as Record<string, unknown>;
      }
      try {
        await client.bind(dn, password);
      } catch (err) {
        if (err instanceof InvalidCredentialsError || /invalid (dn|credentials)|no such object/i.test((err as Error).message)) throw new Unauthorized(WRONG);
        throw new EngineUnavailable(`the LDAP directory ${s.url} failed the bind: ${(err as Error).message}`);
      }
      // As the user now: their own entry (mail, memberOf), then their groups.
      const self = await this.call(() => client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [s.mailAttribute, 'memberOf'] }), 'reading the user entry failed')
        .catch(() => ({ searchEntries: [] as Record<string, unknown>[] }));
      entry = { ...entry, ...(self.searchEntries[0] ?? {}) };
      let groups: string[];
      if (s.groupSearchBase) {
        const filter = s.groupSearchFilter.split('{dn}').join(ldapFilterValue(dn)).split('{user}').join(ldapFilterValue(username));
        const r = await this.call(() => client.search(s.groupSearchBase, { scope: 'sub', filter, sizeLimit: 1000, attributes: [s.groupNameAttribute] }), 'the group search failed');
        groups = r.searchEntries.flatMap((e) => [e.dn, ...values(e[s.groupNameAttribute])]);
      } else {
        groups = values(entry.memberOf);
      }
      return { subject: dn, username, email: values(entry[s.mailAttribute])[0] ?? '', groups };
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  private async call<T>(fn: () => Promise<T>, what: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      throw new EngineUnavailable(`LDAP ${this.o.settings.url}: ${what}: ${(err as Error).message}`);
    }
  }
}

function values(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}
