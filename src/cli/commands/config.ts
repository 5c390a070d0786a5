import type { Command } from 'commander';
import type { BerthClient } from '../../client/index.ts';
import {
  configHistory, getConfig, listConfig, setConfig, unsetConfig, type ConfigChangeView, type ConfigEntryView, type ConfigWriteView,
} from '../../client/config-client.ts';
import { CliFailure, EXIT, ago, connect, progressDone, table, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { waitForDeployment } from '../wait-release.ts';

const MASK = '******** (secret)';

export function registerConfig(program: Command): void {
  const config = program.command('config')
    .description('configuration of an app per environment: key/values injected into its containers as environment variables; ' +
      'every change is a new version and rolls out as a new release')
    .addHelpText('after', `
Keys are environment-variable names: A-Z, 0-9 and _, not starting with a digit; PORT and BERTH_* are
reserved. A change re-deploys the app's running services with the new configuration (rolling restart,
or per the service's update strategy) and waits until they are healthy, like \`berth deploy\`.
Secrets are set with \`berth secret set\` (never on the command line); \`config ls\` shows them masked.

Examples:
  berth config set shop GREETING=hello LOG_LEVEL=debug
  berth config get shop GREETING --env staging
  berth config unset shop LOG_LEVEL
  berth config history shop
  berth config set new-app GREETING=hello --create   # before new-app's first deploy`);

  rolloutOptions(config.command('set')
    .argument('<app>', 'app name')
    .argument('<key=value...>', 'one or more KEY=VALUE (plain values only: use `berth secret set` for secrets)')
    .description('set configuration values (one new version for all of them) and roll them out'))
    .option('--create', 'configure an app or environment that has nothing yet (before its first deploy); without it an unknown name is an error')
    .action(async (app: string, pairs: string[], o: RolloutOpts & { env: string; create?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const entries = pairs.map((p) => {
        const i = p.indexOf('=');
        if (i <= 0) throw new CliFailure(`"${p}" is not KEY=VALUE: write e.g. GREETING=hello`, EXIT.usage);
        return { key: p.slice(0, i), value: p.slice(i + 1) };
      });
      const client = connect(g);
      await reportWrite(client, app, o.env, await setConfig(client, app, o.env, entries, { create: o.create === true }), o, g);
    });

  config.command('get')
    .argument('<app>', 'app name')
    .argument('<key>', 'the key')
    .description('print one value (exactly, on stdout); for a secret use `berth secret get APP KEY --reveal`')
    .option('--env <env>', 'environment', 'prod')
    .action(async (app: string, key: string, o: { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const { entry } = await getConfig(connect(g), app, o.env, key);
      if (entry.kind === 'secret') {
        throw new CliFailure(`${key} is a secret: print it with \`berth secret get ${app} ${key} --env ${o.env} --reveal\``, EXIT.usage);
      }
      output(g, entry, () => process.stdout.write(entry.value + '\n'));
    });

  rolloutOptions(config.command('unset')
    .argument('<app>', 'app name')
    .argument('<key...>', 'one or more keys (values or secrets)')
    .description('remove keys (one new version) and roll the change out; nothing changes if a key is not set'))
    .action(async (app: string, keys: string[], o: RolloutOpts & { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      await reportWrite(client, app, o.env, await unsetConfig(client, app, o.env, keys), o, g);
    });

  config.command('ls')
    .argument('<app>', 'app name')
    .description('list keys with their values; secrets are masked')
    .option('--env <env>', 'environment', 'prod')
    .action(async (app: string, o: { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await listConfig(connect(g), app, o.env);
      output(g, r.entries, () => console.log(r.entries.length === 0 ? `no configuration for ${app}/${o.env}` : entryTable(r.entries, true)));
    });

  config.command('history')
    .argument('<app>', 'app name')
    .description('versions, newest first: who, when, which keys changed (values of plain keys; never a secret\'s value)')
    .option('--env <env>', 'environment', 'prod')
    .action(async (app: string, o: { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const { versions } = await configHistory(connect(g), app, o.env);
      output(g, versions, () => {
        if (versions.length === 0) return void console.log(`no configuration history for ${app}/${o.env}`);
        const rows = [['VERSION', 'WHEN', 'BY', 'CHANGES']];
        for (const v of versions) rows.push([String(v.version), when(v.at), v.who, v.changes.map(describeChange).join('; ')]);
        console.log(table(rows));
      });
    });
}

/** The options of every command that stores a configuration change and rolls it out. */
export function rolloutOptions(c: Command, stored = 'the change is stored'): Command {
  return c
    .option('--env <env>', 'environment', 'prod')
    .option('--no-wait', `return once ${stored}, without waiting for the rollout`)
    .option('--timeout <duration>', 'give up waiting for the rollout after this long: seconds or a duration such as 90s, 2m (exit 1)', '600')
    // A bad --timeout is refused before anything is written.
    .hook('preAction', (cmd) => void timeoutSeconds(String(cmd.opts<{ timeout: string }>().timeout)));
}

export interface RolloutOpts {
  wait: boolean;
  timeout: string;
}

/**
 * Prints what a change did, then (unless --no-wait) follows the deployment that rolls it out. With
 * --json: one document, the write's result plus, after waiting, `rollout: {deployment, status}`.
 */
export async function reportWrite(client: BerthClient, app: string, env: string, r: ConfigWriteView, o: RolloutOpts, g: GlobalOpts): Promise<void> {
  if (!g.json) {
    if (!r.changed) console.log(`${app}/${env}: no change (configuration version ${r.version})`);
    else console.log(`${app}/${env}: configuration version ${r.version}: ${r.changes.map(describeChange).join('; ')}`);
  }
  if (!r.changed || !r.deployment || !o.wait) {
    output(g, r, () => {
      if (!r.changed) return;
      if (!r.deployment) process.stderr.write(`${app}/${env} is not deployed: its next deploy uses this configuration\n`);
      else process.stderr.write(`rolling out in deployment ${r.deployment}; follow it with \`berth status ${app}\`\n`);
    });
    return;
  }
  if (!g.json) process.stderr.write(`rolling out (deployment ${r.deployment})\n`);
  try {
    await followDeployment(client, app, env, r.deployment, { json: g.json === true, timeoutS: timeoutSeconds(o.timeout) });
    output(g, { ...r, rollout: { deployment: r.deployment, status: 'succeeded' } }, () => undefined);
  } catch (err) {
    // The change is stored either way: say so in the one document, then fail.
    if (g.json) output(g, { ...r, rollout: { deployment: r.deployment, status: 'failed', message: (err as Error).message } }, () => undefined);
    throw err;
  }
}

/** Follows the rollout a configuration change started (one streaming request); with --json, stdout stays one document. */
async function followDeployment(client: BerthClient, app: string, env: string, id: string, o: { json: boolean; timeoutS: number }): Promise<void> {
  const { line } = await waitForDeployment(client, { app, env, id, what: 'rollout' }, {
    json: o.json, timeoutS: o.timeoutS, quiet: true,
    failure: (message) => `the configuration is stored, but its rollout (deployment ${id}) failed: ${message}`,
  });
  if (!o.json) progressDone(`✔ ${app}/${env} rolled out: ${line}`);
}

export function entryTable(entries: ConfigEntryView[], withValues: boolean): string {
  const rows = [withValues ? ['KEY', 'VALUE', 'VERSION', 'UPDATED', 'BY'] : ['KEY', 'VERSION', 'UPDATED', 'BY']];
  for (const e of entries) {
    const value = e.kind === 'secret' ? MASK : short(e.value ?? '');
    rows.push([e.key, ...(withValues ? [value] : []), String(e.version), `${ago(e.updatedAt)} ago`, e.updatedBy]);
  }
  return table(rows);
}

function describeChange(c: ConfigChangeView): string {
  if (c.op === 'unset') return `unset ${c.key}${c.kind === 'secret' ? ' (secret)' : ''}`;
  if (c.kind === 'secret') return `set ${c.key} (secret)`;
  return `set ${c.key}=${short(c.new ?? '')}${c.old !== undefined ? ` (was ${short(c.old)})` : ''}`;
}

/** One line, at most 60 characters: a table cell, not the value (`config get` prints values exactly). */
function short(v: string): string {
  const one = /[\n\r\t]/.test(v) ? JSON.stringify(v) : v;
  return one.length > 60 ? one.slice(0, 59) + '…' : one;
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}
