import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { splitShellWords } from '../../core/spec/shell-words.ts';
import { CliFailure, EXIT, ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

function argv(flag: string, v: string | undefined): string[] {
  if (!v) return [];
  const r = splitShellWords(v);
  if (!r.ok) throw new CliFailure(`${flag}: ${r.message}`, EXIT.usage);
  return r.argv;
}

export function registerTemplate(program: Command): void {
  const t = program.command('template').description('confd-style files rendered from the registry and configuration whenever they change');
  t.command('set')
    .argument('<name>', 'template name')
    .requiredOption('-f, --file <file>', 'template source, e.g. {{range service "web.shop.prod"}}server {{.Address}}:{{.Port}};{{end}}')
    .requiredOption('--dest <path>', 'absolute path of the rendered file (replaced atomically)')
    .option('--check <command>', 'command that tests the candidate; {{candidate}} is its path, e.g. "nginx -t -c {{candidate}}"')
    .option('--reload <command>', 'command run after the file changed, e.g. "nginx -s reload"')
    .description('declare or replace a template')
    .action(async (name: string, o: { file: string; dest: string; check?: string; reload?: string }) => {
      const g = program.opts<GlobalOpts>();
      let source: string;
      try {
        source = readFileSync(o.file, 'utf8');
      } catch {
        throw new CliFailure(`${o.file}: cannot read it`, EXIT.usage);
      }
      const r = await connect(g).setTemplate(name, { source, dest: o.dest, check: argv('--check', o.check), reload: argv('--reload', o.reload) });
      output(g, r, () => console.log(`template ${r.name} → ${r.dest}`));
    });
  t.command('ls').description('list templates with their last render and error').action(async () => {
    const g = program.opts<GlobalOpts>();
    const { templates } = await connect(g).templates();
    output(g, templates, () => {
      const rows = [['NAME', 'DEST', 'RENDERED', 'ERROR']];
      for (const x of templates) rows.push([x.name, x.dest, x.renderedAt ? ago(x.renderedAt) + ' ago' : 'never', x.lastError || '-']);
      console.log(templates.length ? table(rows) : 'no templates: add one with `berth template set`');
    });
  });
  t.command('rm').argument('<name>').description('remove a template (the rendered file stays)').action(async (name: string) => {
    const g = program.opts<GlobalOpts>();
    await connect(g).removeTemplate(name);
    output(g, { removed: name }, () => console.log(`removed template ${name}`));
  });
}
