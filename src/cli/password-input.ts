import { CliFailure, EXIT } from './context.ts';

/** All of stdin, without its final newline (`echo PASS | berth login --password-stdin`). */
async function readStdin(): Promise<string> {
  let s = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) s += chunk as string;
  return s.replace(/\r?\n$/, '');
}

/** Asks on the terminal without echoing what is typed. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    let value = '';
    const onData = (ch: string) => {
      for (const c of ch) {
        if (c === '\r' || c === '\n') {
          done();
          process.stderr.write('\n');
          return resolve(value);
        }
        if (c === '\u0003') {
          done();
          return reject(new CliFailure('cancelled', EXIT.failed));
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

/** A password from stdin (`--password-stdin`) or typed at a terminal; never from an argument (it would land in shell history and `ps`). */
export async function readPassword(o: { stdin?: boolean }, question = 'Password: '): Promise<string> {
  if (o.stdin) return readStdin();
  if (!process.stdin.isTTY) throw new CliFailure('no terminal to ask for the password: pipe it in with --password-stdin', EXIT.usage);
  return prompt(question);
}
