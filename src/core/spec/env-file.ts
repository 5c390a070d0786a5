/**
 * Parses env files — `env_file:`, and the `.env` beside a Compose file (the CLI's and a pushed
 * commit's) — with the rules docker compose users rely on: `KEY=VALUE` lines,
 * `#` comments, blank lines, an optional `export ` prefix, single quotes (literal), double quotes
 * (with `\n`, `\t`, `\"`, `\\` escapes, may span lines) and unquoted values with trailing ` #` comments.
 * Values are not interpolated (docker compose would expand `${VAR}` in unquoted and double-quoted values).
 */

export interface EnvFileProblem {
  line: number;
  col: number;
  message: string;
}

export interface EnvFileResult {
  vars: Record<string, string>;
  /** Lines with just `KEY`: the value comes from the environment, if set there. */
  bareKeys: string[];
  problems: EnvFileProblem[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export function parseEnvFile(text: string): EnvFileResult {
  const vars: Record<string, string> = {};
  const bareKeys: string[] = [];
  const problems: EnvFileProblem[] = [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    let line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice('export '.length).trimStart();
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!KEY.test(key)) {
      problems.push({
        line: lineNo,
        col: 1,
        message: `invalid line ${JSON.stringify(lines[n])}: expected KEY=VALUE where KEY has only letters, digits, "_", "." and "-"`,
      });
      continue;
    }
    if (eq < 0) {
      bareKeys.push(key);
      continue;
    }
    let rest = line.slice(eq + 1).trimStart();
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      // A quoted value may continue on the following lines until its closing quote.
      let startLine = n;
      let body = rest.slice(1);
      let end = findClosingQuote(body, quote);
      while (end < 0 && startLine + 1 < lines.length) {
        startLine++;
        body += '\n' + lines[startLine]!;
        end = findClosingQuote(body, quote);
      }
      if (end < 0) {
        problems.push({ line: lineNo, col: eq + 2, message: `unterminated ${quote} quote in the value of ${key}: close it` });
        n = startLine;
        continue;
      }
      const raw = body.slice(0, end);
      vars[key] = quote === '"' ? unescapeDouble(raw) : raw;
      n = startLine;
      continue;
    }
    // Unquoted: a `#` preceded by whitespace starts a comment.
    const hash = rest.search(/\s#/);
    if (hash >= 0) rest = rest.slice(0, hash);
    vars[key] = rest.trim();
  }
  return { vars, bareKeys, problems };
}

function findClosingQuote(s: string, quote: string): number {
  for (let i = 0; i < s.length; i++) {
    if (quote === '"' && s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === quote) return i;
  }
  return -1;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\(.)/gs, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
}
