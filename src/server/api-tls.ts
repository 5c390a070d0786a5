import { readFile, stat } from 'node:fs/promises';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Server } from 'node:tls';
import type { ServerOptions } from 'node:https';
import { InvalidInput } from '../core/errors.ts';
import type { Logger } from '../core/ports.ts';

/**
 * TLS for the API from two PEM files (BERTH_API_TLS_CERT/KEY): checked at start (a server that
 * cannot serve TLS must not start serving plain HTTP instead), and re-read when they change: a
 * renewed certificate is taken by new connections without a restart (`setSecureContext`).
 */
export class ApiTls {
  private timer: NodeJS.Timeout | undefined;
  private stamp: string;

  private constructor(private readonly files: { certFile: string; keyFile: string }, private pem: { cert: string; key: string }, stamp: string, private readonly log: Logger) {
    this.stamp = stamp;
  }

  static async load(files: { certFile: string; keyFile: string }, log: Logger): Promise<ApiTls> {
    const [pem, stamp] = await Promise.all([ApiTls.read(files), ApiTls.stampOf(files)]);
    return new ApiTls(files, pem, stamp, log);
  }

  private static async stampOf(f: { certFile: string; keyFile: string }): Promise<string> {
    const [a, b] = await Promise.all([stat(f.certFile), stat(f.keyFile)]);
    return `${a.mtimeMs}/${a.size}/${b.mtimeMs}/${b.size}`;
  }

  private static async read(f: { certFile: string; keyFile: string }): Promise<{ cert: string; key: string }> {
    const get = async (name: string, path: string) => readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new InvalidInput(`${name} ${path}: cannot read it (${err.code ?? 'error'})`);
    });
    const [cert, key] = await Promise.all([get('BERTH_API_TLS_CERT', f.certFile), get('BERTH_API_TLS_KEY', f.keyFile)]);
    let x: X509Certificate;
    try {
      x = new X509Certificate(cert);
    } catch {
      throw new InvalidInput(`BERTH_API_TLS_CERT ${f.certFile}: not a PEM certificate`);
    }
    let ok = false;
    try {
      ok = x.checkPrivateKey(createPrivateKey(key));
    } catch {
      throw new InvalidInput(`BERTH_API_TLS_KEY ${f.keyFile}: not a PEM private key (unencrypted)`);
    }
    if (!ok) throw new InvalidInput(`BERTH_API_TLS_KEY ${f.keyFile} does not belong to the certificate in ${f.certFile}`);
    return { cert, key };
  }

  options(): ServerOptions {
    return { cert: this.pem.cert, key: this.pem.key, minVersion: 'TLSv1.2' };
  }

  /** Checks the files every few seconds; a changed, valid pair replaces the context for new connections. */
  watch(server: Server, everyMs = 5000): void {
    this.timer = setInterval(() => {
      void (async () => {
        const stamp = await ApiTls.stampOf(this.files).catch(() => this.stamp);
        if (stamp === this.stamp) return;
        this.stamp = stamp;
        try {
          this.pem = await ApiTls.read(this.files);
          server.setSecureContext(this.options());
          this.log.info('API certificate reloaded');
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'API certificate files changed but cannot be used; keeping the previous one');
        }
      })();
    }, everyMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
