import type { Command } from 'commander';
import { formatIssue } from '../../core/errors.ts';
import { withoutFileValues } from '../../core/spec/secrets.ts';
import { activeProfiles, loadSpecFile, specReport } from '../load-spec.ts';

/** Collects a repeated option (`-f a -f b`, `--profile x --profile y`) in order. */
export function repeated(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerValidate(program: Command): void {
  program.command('validate')
    .description('check Compose files (with x-berth extensions) without deploying anything')
    .option('-f, --file <file>', 'Compose file; repeat to merge several in order (default: compose.yaml and compose.override.yaml here)', repeated, [])
    .option('--profile <name>', 'activate a profile (repeatable; default: COMPOSE_PROFILES)', repeated, [])
    .option('--app <name>', 'app name (default: the file\'s `name:` or its directory)')
    .option('--env <env>', 'environment the file is interpolated for (${BERTH_ENV})', 'prod')
    .action((o: { file: string[]; profile: string[]; app?: string; env: string }) => {
      const json = program.opts<{ json?: boolean }>().json;
      let parsed;
      try {
        parsed = loadSpecFile(o.file, o.app, o.env, activeProfiles(o.profile));
      } catch (err) {
        // --json: the report (errors, then warnings) is the one document on stdout; the error itself goes to stderr.
        const report = json ? specReport(err) : undefined;
        if (report) process.stdout.write(JSON.stringify(report) + '\n');
        throw err;
      }
      const { spec, warnings, inactive, source } = parsed;
      if (json) {
        // Secret values stay out of the output (terminals and CI logs are kept).
        console.log(JSON.stringify({ valid: true, spec: withoutFileValues(spec), warnings, ...(inactive ? { inactive } : {}) }));
        return;
      }
      for (const w of warnings) console.error(`warning: ${formatIssue(w)}`);
      const svcs = Object.values(spec.services);
      const files = [source.file, ...(source.moreFiles ?? []).map((f) => f.file)].join(' + ');
      const off = inactive ? `; not active (profiles): ${Object.entries(inactive).map(([n, p]) => `${n} (${p.join(', ')})`).join(', ')}` : '';
      console.log(`${files}: valid — app "${spec.name}", ${svcs.length} service(s): ${svcs.map((s) => `${s.name}×${s.replicas}`).join(', ')}${off}`);
    });
}
