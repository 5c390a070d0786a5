import type { Command } from 'commander';
import { formatIssue } from '../../core/errors.ts';
import { connect, progressDone, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { activeProfiles, hostPathIssues, loadSpecFile, specReport } from '../load-spec.ts';
import { repeated } from './validate.ts';
import { waitForDeployment } from '../wait-release.ts';
import { ApiError, responseLines, type BerthClient } from '../../client/index.ts';
import { ndjson } from '../output.ts';

export function registerDeploy(program: Command): void {
  program.command('deploy')
    .description('deploy a Compose file; waits until every service is healthy (exit 0) or the deployment failed (exit 1)')
    .option('-f, --file <file>', 'Compose file; repeat to merge several in order (default: compose.yaml and compose.override.yaml here)', repeated, [])
    .option('--profile <name>', 'activate a profile (repeatable; default: COMPOSE_PROFILES)', repeated, [])
    .option('--app <name>', 'app name (default: the file\'s `name:` or its directory)')
    .option('--env <env>', 'environment (also ${BERTH_ENV} in the file)', 'prod')
    .option('--no-wait', 'return once the deployment is accepted')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '600')
    .action(async (o: DeployOptions) => {
      const g = program.opts<GlobalOpts>();
      try {
        await deploy(g, o);
      } catch (err) {
        // --json: a refused spec is reported on stdout (errors, then warnings) as well as the error on stderr.
        const report = g.json ? specReport(err) : undefined;
        if (report) process.stdout.write(JSON.stringify(report) + '\n');
        throw err;
      }
    });
}

interface DeployOptions { file: string[]; profile: string[]; app?: string; env: string; wait: boolean; timeout: string }

async function deploy(g: GlobalOpts, o: DeployOptions): Promise<void> {
  const timeoutS = timeoutSeconds(o.timeout);
  const parsed = loadSpecFile(o.file, o.app, o.env, activeProfiles(o.profile));
  const { spec, warnings, source } = parsed;
  for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
  const client = connect(g);
  // Follow the event timeline from just before the deploy: releases, starts, health, drains, rollbacks.
  // The newest event of any app is the cursor (a first deploy's app does not exist yet to filter by).
  const lastEvent = (await client.events({ limit: 1 })).events.at(-1)?.id ?? 0;
  const answer = await client.deploy(spec.name, o.env, spec, warnings, source).catch((err: unknown) => {
    // Host paths the server refused, shown where the file names them.
    throw hostPathIssues(err, parsed.source.file, parsed) ?? err;
  });
  if ('approval' in answer) {
    if (g.json) console.log(JSON.stringify({ approval: answer.approval }));
    else process.stderr.write(`${answer.message}\n`);
    return;
  }
  const { deployment } = answer;
  if (!g.json) process.stderr.write(`deploying ${spec.name} to ${o.env} (deployment ${deployment.id})\n`);
  if (!o.wait) {
    if (g.json) console.log(JSON.stringify({ deployment }));
    return;
  }
  // Services with a build section: the build's progress, line by line as `berth build logs` shows it.
  const ac = new AbortController();
  const building = deployment.buildId ? followBuild(client, deployment.buildId, !!g.json, ac.signal) : undefined;
  const { state: st, line } = await waitForDeployment(client, { app: spec.name, env: o.env, id: deployment.id, what: 'deployment' },
    { json: !!g.json, timeoutS, afterEvent: lastEvent }).finally(async () => {
    ac.abort();
    await building;
  });
  if (!g.json) {
    progressDone(`✔ ${spec.name}/${o.env} deployed: ${line}`);
    const ping = await client.ping().catch(() => undefined);
    for (const s of st.services) {
      for (const r of 'routes' in s ? s.routes : []) {
        console.log(`  ${s.name}: http://${r.host ?? '127.0.0.1'}:${ping?.ingressPort ?? 8080}${r.path}`);
      }
    }
  }
}

/**
 * Prints a deployment's build log as it grows (the deployment controller submits the build when it
 * first looks at the deployment: until then the build is not found, and asked for again). Ends with
 * the build, or when `signal` aborts; never fails the deploy (its wait reports the outcome).
 */
async function followBuild(client: BerthClient, id: string, json: boolean, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const res = await client.buildLogs(id, { follow: true }, signal);
      for await (const line of responseLines(res, { text: true })) {
        if (json) ndjson({ build: { id, line } });
        else progressDone(line);
      }
      return;
    } catch (err) {
      if (signal.aborted || !(err instanceof ApiError && err.status === 404) || attempt > 600) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
