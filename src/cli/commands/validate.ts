import type { Command } from 'commander';
import { formatIssue } from '../../core/errors.ts';
import { withoutFileValues } from '../../core/spec/secrets.ts';
import { loadSpecFile } from '../load-spec.ts';

export function registerValidate(program: Command): void {
  program.command('validate')
    .description('check a Compose file (with x-berth extensions) without deploying anything')
    .requiredOption('-f, --file <file>', 'Compose file')
    .option('--app <name>', 'app name (default: the file\'s `name:` or its directory)')
    .option('--env <env>', 'environment the file is interpolated for (${BERTH_ENV})', 'prod')
    .action((o: { file: string; app?: string; env: string }) => {
      const json = program.opts<{ json?: boolean }>().json;
      const { spec, warnings } = loadSpecFile(o.file, o.app, o.env);
      if (json) {
        // Secret values stay out of the output (terminals and CI logs are kept).
        console.log(JSON.stringify({ valid: true, spec: withoutFileValues(spec), warnings }));
        return;
      }
      for (const w of warnings) console.error(`warning: ${formatIssue(w)}`);
      const svcs = Object.values(spec.services);
      console.log(`${o.file}: valid — app "${spec.name}", ${svcs.length} service(s): ${svcs.map((s) => `${s.name}×${s.replicas}`).join(', ')}`);
    });
}
