import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { getConfig, listConfig, setConfig, unsetConfig } from '../../client/config-client.ts';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { entryTable, reportWrite, rolloutOptions, type RolloutOpts } from './config.ts';

export function registerSecret(program: Command): void {
  const secret = program.command('secret')
    .description('secrets of an app per environment: encrypted at rest, injected into its containers as environment variables, ' +
      'never shown unless asked with --reveal')
    .addHelpText('after', `
A secret's value is read from stdin (piped, or typed without echo on a terminal) or from a file
(--from-file), never from the command line: argv ends up in shell history and in \`ps\`. From stdin one
trailing newline is dropped (so \`echo "$PW" | berth secret set ...\` works); a file is taken exactly.
Setting or removing a secret rolls the app out like \`berth config set\`.

Examples:
  printf %s "$DB_PASSWORD" | berth secret set shop DB_PASSWORD
  berth secret set shop TLS_KEY --from-file ./key.pem
  berth secret ls shop
  berth secret get shop DB_PASSWORD --reveal
  berth secret rm shop DB_PASSWORD`);

  rolloutOptions(secret.command('set')
    .argument('<app>', 'app name')
    .argument('<key>', 'the secret\'s name (A-Z, 0-9, _)')
    .argument('[value]', 'refused unless --value-from-argv is given: pipe the value on stdin or use --from-file')
    .description('set a secret from stdin or --from-file and roll it out'), 'the secret is stored')
    .addHelpText('after', `
The value comes from stdin (piped: all of it minus one trailing newline; on a terminal: typed without
echo) or from --from-file (exact bytes), never from the command line by default: argv ends up in shell
history and in \`ps\`. The change rolls out like \`berth config set\` and waits until healthy.

Example:
  printf %s "$DB_PASSWORD" | berth secret set shop DB_PASSWORD --env staging`)
    .option('--from-file <path>', 'read the value from this file (exact bytes, UTF-8)')
    .option('--value-from-argv', 'accept the value as the third argument (it will be visible in shell history and `ps`)')
    .option('--create', 'configure an app or environment that has nothing yet (before its first deploy); without it an unknown name is an error')
    .action(async (app: string, key: string, argvValue: string | undefined, o: RolloutOpts & { env: string; fromFile?: string; valueFromArgv?: boolean; create?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      if (key.includes('=') && !o.valueFromArgv) {
        throw new CliFailure('refusing a secret value on the command line (KEY=VALUE): give only the key and pipe the value on stdin, or use --from-file', EXIT.usage);
      }
      let value: string;
      if (argvValue !== undefined) {
        if (!o.valueFromArgv) {
          throw new CliFailure('refusing a secret value on the command line: it would stay in shell history and be visible in `ps`. ' +
            'Pipe it on stdin or use --from-file; add --value-from-argv to do it anyway', EXIT.usage);
        }
        if (o.fromFile) throw new CliFailure('give the value either as an argument or with --from-file, not both', EXIT.usage);
        process.stderr.write('warning: the secret value was given on the command line; it may be in your shell history and was visible in `ps`\n');
        value = argvValue;
      } else if (o.fromFile) {
        try {
          value = readFileSync(o.fromFile, 'utf8');
        } catch (err) {
          throw new CliFailure(`cannot read ${o.fromFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
        }
      } else {
        value = await readStdinValue(`value of ${key} for ${app}/${o.env}: `);
      }
      const client = connect(g);
      await reportWrite(client, app, o.env, await setConfig(client, app, o.env, [{ key, value, secret: true }], { create: o.create === true }), o, g);
    });

  secret.command('ls')
    .argument('<app>', 'app name')
    .description('list the secrets (names, versions, who and when; never values)')
    .option('--env <env>', 'environment', 'prod')
    .action(async (app: string, o: { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const entries = (await listConfig(connect(g), app, o.env)).entries.filter((e) => e.kind === 'secret');
      output(g, entries, () => console.log(entries.length === 0 ? `no secrets for ${app}/${o.env}` : entryTable(entries, false)));
    });

  secret.command('get')
    .argument('<app>', 'app name')
    .argument('<key>', 'the secret\'s name')
    .description('show a secret\'s metadata; with --reveal, print its value (exactly, on stdout)')
    .option('--env <env>', 'environment', 'prod')
    .option('--reveal', 'print the value (the server checks that your token may read secrets)')
    .action(async (app: string, key: string, o: { env: string; reveal?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const { entry } = await getConfig(connect(g), app, o.env, key, { reveal: o.reveal === true });
      if (entry.kind !== 'secret') throw new CliFailure(`${key} is a plain value, not a secret: see \`berth config get ${app} ${key}\``, EXIT.usage);
      if (g.json) return output(g, entry, () => undefined);
      if (o.reveal) return void process.stdout.write((entry.value ?? '') + '\n');
      console.log(`${key}: secret, set in configuration version ${entry.version} by ${entry.updatedBy}; add --reveal to print its value`);
    });

  rolloutOptions(secret.command('rm')
    .argument('<app>', 'app name')
    .argument('<key...>', 'one or more secret names')
    .description('remove secrets (one new version) and roll the change out'))
    .action(async (app: string, keys: string[], o: RolloutOpts & { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const kinds = new Map((await listConfig(client, app, o.env)).entries.map((e) => [e.key, e.kind]));
      const plain = keys.filter((k) => kinds.get(k) === 'value');
      if (plain.length > 0) throw new CliFailure(`${plain.join(', ')} ${plain.length === 1 ? 'is a plain value' : 'are plain values'}: remove with \`berth config unset\``, EXIT.usage);
      await reportWrite(client, app, o.env, await unsetConfig(client, app, o.env, keys), o, g);
    });
}

/** Piped stdin: all of it, minus one trailing newline. A terminal: one line typed without echo. */
async function readStdinValue(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return readHidden(prompt);
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          return resolve(value);
        }
        if (ch === '\u0003') {
          finish();
          return reject(new CliFailure('cancelled; nothing was changed', EXIT.failed));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
