import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CertView } from '../../client/index.ts';
import { CliFailure, EXIT, connect, progress, progressDone, table, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliFailure(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.usage);
  }
}

function day(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().slice(0, 10);
}

function certRows(certs: CertView[]): string {
  const rows = [['HOST', 'STATUS', 'SOURCE', 'ISSUER', 'EXPIRES', 'RENEWS', 'ROUTES']];
  for (const c of certs) rows.push([c.host, c.status, c.source ?? '-', c.issuer ?? '-', day(c.notAfter), day(c.renewAt), c.routes.join(',') || '-']);
  const notes = certs.filter((c) => c.lastError).map((c) => `${c.host}: ${c.lastError}${c.retryAt ? ` (retry at ${new Date(c.retryAt).toISOString()})` : ''}`);
  return [table(rows), ...notes].join('\n');
}

/** `berth certs` and `berth cert add|rm|renew`: certificates of routes' hosts. */
export function registerCert(program: Command): void {
  program.command('certs')
    .description("certificates of routes' hosts: status, source (acme or upload), issuer, expiry, next renewal, routes asking")
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const { certs } = await connect(g).certs();
      output(g, certs, () => console.log(certs.length ? certRows(certs) : 'no certificates: routes with a host get one when ACME is configured, or add one with `berth cert add`'));
    });
  const c = program.command('cert').description('upload, remove or renew the certificate of a host');
  c.command('add')
    .argument('<host>', 'the host name the certificate is for (a wildcard host such as *.apps.example.com too)')
    .requiredOption('--cert <file>', 'PEM certificate chain: the host\'s certificate first, then intermediates')
    .requiredOption('--key <file>', 'PEM private key (unencrypted)')
    .description('upload a certificate (checked: the key matches, it covers the host, it is current); it replaces any other for the host and is never renewed by ACME')
    .action(async (host: string, o: { cert: string; key: string }) => {
      const g = program.opts<GlobalOpts>();
      const v = await connect(g).uploadCert(host, readPem('--cert', o.cert), readPem('--key', o.key));
      output(g, v, () => console.log(`certificate for ${v.host} stored (${v.issuer}, expires ${day(v.notAfter)})${v.routes.length ? '' : '; no route of this host asks for one yet'}`));
    });
  c.command('rm')
    .argument('<host>')
    .description("remove a host's certificate (if a route still asks for one and ACME is configured, Berth gets a new one)")
    .action(async (host: string) => {
      const g = program.opts<GlobalOpts>();
      await connect(g).removeCert(host);
      output(g, { removed: host }, () => console.log(`removed the certificate of ${host}`));
    });
  c.command('renew')
    .argument('<host>')
    .option('--no-wait', 'return at once instead of waiting for the new certificate')
    .option('--timeout <duration>', 'how long to wait: seconds or a duration such as 90s, 3m', '180')
    .description('renew an ACME certificate now')
    .action(async (host: string, o: { wait: boolean; timeout: string }) => {
      const g = program.opts<GlobalOpts>();
      // Checked before anything is asked of the server: a bad value changes nothing.
      const timeoutS = timeoutSeconds(o.timeout);
      const client = connect(g);
      const before = (await client.certs()).certs.find((x) => x.host === host.toLowerCase());
      let v = await client.renewCert(host);
      if (o.wait) {
        const deadline = Date.now() + timeoutS * 1000;
        for (;;) {
          progress(`renewing ${v.host}: ${v.status}`);
          if (v.status === 'failed') {
            progressDone();
            throw new CliFailure(`renewing ${v.host} failed: ${v.lastError ?? 'see berth events'}`, EXIT.failed);
          }
          if (v.status === 'valid' && v.fingerprint !== before?.fingerprint) break;
          if (Date.now() > deadline) {
            progressDone();
            throw new CliFailure(`renewing ${v.host}: no new certificate after ${timeoutS}s (status ${v.status}); it goes on in the background`, EXIT.failed);
          }
          await new Promise((r) => setTimeout(r, 500));
          v = (await client.certs()).certs.find((x) => x.host === v.host) ?? v;
        }
        progressDone();
      }
      output(g, v, () => console.log(o.wait ? `certificate for ${v.host} renewed (expires ${day(v.notAfter)})` : `renewal of ${v.host} requested: see \`berth certs\``));
    });
}
