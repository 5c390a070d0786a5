import type { Command } from 'commander';
import { listVolumes, type VolumeView } from '../../client/volume-client.ts';
import { formatImageSize } from '../../core/image-checks.ts';
import { connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

function users(v: VolumeView): string {
  return v.services.map((s) => `${s.service}:${s.target}${s.readOnly ? ':ro' : ''}`).join(' ') || '-';
}

function containers(v: VolumeView): string {
  return v.containers.map((c) => `${c.instance}(${c.service}#${c.release}${c.state === 'running' ? '' : `,${c.state}`})`).join(' ') || '-';
}

export function registerVolumes(program: Command): void {
  program.command('volumes')
    .argument('[app]', 'only this app')
    .description('named volumes of apps: their size on the engine and who mounts them (services of the current releases, containers now)')
    .option('--env <env>', 'only this environment')
    .addHelpText('after', `
Every volume a release of the app mounts is listed (what \`berth rm APP --purge\` removes), also one
no container has created yet ("not created"). SIZE is what the engine measured (\`docker system df -v\`).
A service writing to a named volume with one replica releases stop-first: the old container stops
before the new one starts, so two processes never open one data directory.

Examples:
  berth volumes
  berth volumes shop --env prod
  berth --json volumes shop`)
    .action(async (app: string | undefined, o: { env?: string }) => {
      const g = program.opts<GlobalOpts>();
      const { volumes } = await listVolumes(connect(g), { ...(app ? { app } : {}), ...(o.env ? { env: o.env } : {}) });
      output(g, { volumes }, () => {
        if (volumes.length === 0) return void console.log(app ? `${app} has no named volumes` : 'no named volumes yet');
        const rows = [['APP', 'ENV', 'VOLUME', 'SIZE', 'SERVICES', 'CONTAINERS', 'ENGINE NAME']];
        for (const v of volumes) {
          rows.push([v.app, v.env, v.name, !v.exists ? 'not created' : v.sizeBytes === null ? '?' : formatImageSize(v.sizeBytes), users(v), containers(v), v.volume]);
        }
        console.log(table(rows));
      });
    });
}
