/**
 * Splits a command string into argv the way docker compose does (POSIX shell word rules without
 * expansion): whitespace separates words, single quotes are literal, double quotes allow `\"`,
 * `\\`, `\$` and `` \` `` escapes, and a backslash outside quotes escapes the next character.
 */
export type SplitResult = { ok: true; argv: string[] } | { ok: false; message: string };

export function splitShellWords(input: string): SplitResult {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === "'") {
      const end = input.indexOf("'", i + 1);
      if (end < 0) return unterminated("'", input);
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      let closed = false;
      while (i < input.length) {
        const c = input[i]!;
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && i + 1 < input.length && '"\\$`'.includes(input[i + 1]!)) {
          word += input[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      if (!closed) return unterminated('"', input);
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 < input.length) word += input[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) argv.push(word);
  return { ok: true, argv };
}

function unterminated(quote: string, input: string): SplitResult {
  return {
    ok: false,
    message: `unterminated ${quote === '"' ? 'double' : 'single'} quote in ${JSON.stringify(input)}: close the quote, or write the command as a list`,
  };
}
