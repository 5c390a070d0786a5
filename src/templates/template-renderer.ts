import { chmod, chown, readFile, rename, stat, unlink } from 'node:fs/promises';
import type { Clock, Logger } from '../core/ports.ts';
import type { EventStore, TemplateStore, TemplateRecord } from '../core/store.ts';
import { InvalidInput } from '../core/errors.ts';
import { parseServiceName, parseTemplate, renderTemplate, type TemplateInstance } from '../core/template.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { runCommand } from '../lib/exec.ts';

export interface TemplateSources {
  /** Healthy instances of app `app`'s service, or (no app) of the external service of that name (registry/Registry.healthy). */
  healthy(service: string, env: string, app?: string): { id: string; address: string; port: number }[];
  /** Apps with such a service when no external service has the name (registry/Registry.appsOnly). */
  appsOnly(env: string, service: string): string[];
  /** A configuration value, if the configuration center has it. */
  key(app: string, env: string, key: string): string | undefined;
}

/**
 * confd, inside Berth: renders every template from the registry and configuration when they change
 * (events, not polling), compares bytes, tests the candidate with the template's check command, swaps it
 * in atomically and runs its reload command. A failing check keeps the old file and raises an event.
 */
export class TemplateRenderer {
  private timer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly d: { store: TemplateStore & EventStore; sources: TemplateSources; logger: Logger; clock: Clock; coalesceMs?: number }) {}

  /** Coalesced: a burst of changes is one pass. */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, this.d.coalesceMs ?? 20);
    this.timer.unref();
  }

  /** Renders every template now (serialized with other passes). */
  sync(): Promise<void> {
    this.chain = this.chain.then(async () => {
      for (const t of this.d.store.listTemplates()) await this.renderOne(t).catch((err) => this.d.logger.error({ template: t.name, err: String(err) }, 'template pass failed'));
    });
    return this.chain;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async renderOne(t: TemplateRecord): Promise<void> {
    const { store, sources, clock } = this.d;
    let text: string;
    try {
      text = renderTemplate(parseTemplate(t.source, t.name), {
        service: (name) => {
          const { service, app, env } = parseServiceName(name);
          if (app === undefined) {
            // `web.prod` names an external service; if only apps have a `web`, say which name to write.
            const apps = sources.appsOnly(env, service);
            if (apps.length > 0) {
              throw new InvalidInput(`service "${name}": ${service} is a service of ${apps.length > 1 ? 'apps' : 'app'} ${apps.join(', ')} in ${env}, ` +
                `not an external service: write service "${service}.${apps[0]}.${env}" (SERVICE.APP.ENV; SERVICE.ENV names an external service)`);
            }
          }
          return sources.healthy(service, env, app).map((i): TemplateInstance => ({ ID: i.id, Address: i.address, Port: i.port, Service: service, App: app ?? '', Env: env }));
        },
        key: (path) => {
          const [app, env, key] = path.split('/') as [string, string, string];
          return sources.key(app, env, key);
        },
      });
    } catch (err) {
      return this.failed(t, `cannot render: ${(err as Error).message}`);
    }
    const cur = await readFile(t.dest, 'utf8').catch(() => undefined);
    if (cur === text) return;
    const candidate = `${t.dest}.berth-candidate`;
    // A new file is private (it may render secrets); an existing one keeps its mode and owner, so
    // `chmod 0644 DEST` (or chown) once is how a file for another program's user is shared.
    const was = await stat(t.dest).catch(() => undefined);
    const mode = was ? was.mode & 0o7777 : 0o600;
    await writeFileAtomic(candidate, text, { mode: 0o600 });
    if (was && (was.uid !== (process.getuid?.() ?? was.uid) || was.gid !== (process.getgid?.() ?? was.gid))) {
      await chown(candidate, was.uid, was.gid).catch(() => undefined);
    }
    await chmod(candidate, mode);
    if (t.check.length > 0) {
      try {
        await runCommand(t.check[0]!, t.check.slice(1).map((a) => a.replaceAll('{{candidate}}', candidate)), { timeoutMs: 30_000 });
      } catch (err) {
        await unlink(candidate).catch(() => undefined);
        return this.failed(t, `check failed, kept the previous ${t.dest}: ${(err as Error).message}`);
      }
    }
    await rename(candidate, t.dest);
    let reloadNote = '';
    if (t.reload.length > 0) {
      try {
        await runCommand(t.reload[0]!, t.reload.slice(1), { timeoutMs: 30_000 });
        reloadNote = `; ran ${t.reload.join(' ')}`;
      } catch (err) {
        return this.failed(t, `rendered ${t.dest}, but the reload command failed: ${(err as Error).message}`);
      }
    }
    store.updateTemplate(t.name, { renderedAt: clock.now(), lastError: '' });
    store.addEvent({ app: '', env: '', service: '', instance: '', kind: 'template.rendered', message: `template ${t.name}: wrote ${t.dest}${reloadNote}` });
  }

  private failed(t: TemplateRecord, message: string): void {
    if (t.lastError === message) return;
    this.d.store.updateTemplate(t.name, { lastError: message });
    this.d.store.addEvent({ app: '', env: '', service: '', instance: '', kind: 'template.failed', message: `template ${t.name}: ${message}` });
    this.d.logger.warn({ template: t.name }, message);
  }
}
