import { Agent } from 'node:https';
import { chmod, mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as acme from 'acme-client';
import { BerthError } from '../core/errors.ts';
import type { Logger } from '../core/ports.ts';
import type { EdgeChallenge } from '../core/edge.ts';

/** A certificate and its private key, PEM (the chain: leaf first). */
export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

/** Gets a certificate for one host name; throws with a message an operator can act on. */
export interface CertIssuer {
  issue(host: string): Promise<IssuedCert>;
}

/** The CA refused or could not be reached; the message says which step and why. */
export class AcmeFailed extends BerthError {
  override readonly code = 'acme_failed';
}

/**
 * HTTP-01 answers as files, one per token, in a directory nginx serves at
 * `/.well-known/acme-challenge/` on the HTTP port of every host (ingress/render.ts). Files, not a
 * route to the control plane: nginx answers without a reload and without Berth in the path.
 */
export class ChallengeDir {
  private readonly open = new Map<string, string>();

  /**
   * `published`: the open challenges changed (edge hosts serve them too: server.ts puts them in the
   * edge feed). After an addition it resolves once the edge hosts have them, so the CA is told to
   * validate only then.
   */
  constructor(readonly dir: string, private readonly published?: (open: EdgeChallenge[], added: boolean) => Promise<void>) {}

  async set(token: string, keyAuthorization: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    // The answer is public by design (the CA fetches it over plain HTTP); nginx's workers must read it.
    await chmod(this.dir, 0o755);
    const path = join(this.dir, checkToken(token));
    await writeFile(path, keyAuthorization, { mode: 0o644 });
    await chmod(path, 0o644);
    this.open.set(token, keyAuthorization);
    await this.published?.(this.list(), true);
  }

  async remove(token: string): Promise<void> {
    await unlink(join(this.dir, checkToken(token))).catch(() => undefined);
    if (this.open.delete(token)) await this.published?.(this.list(), false);
  }

  private list(): EdgeChallenge[] {
    return [...this.open].map(([token, keyAuthorization]) => ({ token, keyAuthorization }));
  }
}

function checkToken(token: string): string {
  // RFC 8555 §8.3: base64url. Anything else could name a path outside the directory.
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) throw new AcmeFailed(`the CA sent an HTTP-01 token that is not base64url (${JSON.stringify(token.slice(0, 40))})`);
  return token;
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** Contact for the account (expiry notices from the CA); optional. */
  email?: string;
  /**
   * PEM of CAs to trust for the ACME directory's own TLS (a private CA, or a test CA such as
   * pebble's). Only this client trusts them; the system store is untouched.
   */
  caPem?: string;
  /** The sealed account key (CertStore.accountKey). */
  accountKey: (create: () => string) => string;
  challenges: ChallengeDir;
  logger: Logger;
}

/**
 * An ACME client (RFC 8555) over acme-client: one account per directory (its key sealed in
 * tls.db), ECDSA P-256 certificate keys, HTTP-01 only (answered by the ingress). acme-client's own
 * pre-check of the challenge URL is skipped: it would fetch the host's public address from here,
 * and the CA checks anyway.
 */
export class AcmeIssuer implements CertIssuer {
  private client: acme.Client | undefined;

  constructor(private readonly o: AcmeIssuerOptions) {
    // acme-client's own axios instance: only ACME requests see this agent and its CA.
    acme.axios.defaults.httpsAgent = new Agent(o.caPem ? { ca: o.caPem, keepAlive: false } : { keepAlive: false });
    acme.axios.defaults.timeout = 30_000;
  }

  private async account(): Promise<acme.Client> {
    if (this.client) return this.client;
    // Generated first (async); kept only when the store has no key for this directory yet.
    const fresh = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const key = this.o.accountKey(() => fresh);
    this.client = new acme.Client({ directoryUrl: this.o.directoryUrl, accountKey: key, backoffAttempts: 10, backoffMin: 200, backoffMax: 5000 });
    return this.client;
  }

  async issue(host: string): Promise<IssuedCert> {
    const log = this.o.logger.child({ host });
    let step = 'connecting to the ACME directory';
    try {
      const client = await this.account();
      const [key, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, await acme.crypto.createPrivateEcdsaKey('P-256'));
      step = 'ordering';
      const certPem = await client.auto({
        csr, termsOfServiceAgreed: true, challengePriority: ['http-01'], skipChallengeVerification: true,
        ...(this.o.email ? { email: this.o.email } : {}),
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          if (challenge.type !== 'http-01') throw new AcmeFailed(`the CA offered only ${challenge.type}: Berth answers http-01`);
          step = 'waiting for the CA to validate http://' + host + '/.well-known/acme-challenge/';
          await this.o.challenges.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          await this.o.challenges.remove(challenge.token);
        },
      });
      log.info('certificate issued by the ACME CA');
      return { certPem, keyPem: key.toString() };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new AcmeFailed(`ACME for ${host} failed while ${step}: ${msg.slice(0, 500)}`, { cause: err });
    }
  }
}
