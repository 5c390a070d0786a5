/**
 * The Compose file as a YAML document plus the means to point at any part of it: every issue and
 * warning names a line and column, so paths like `services.web.deploy.replicas` are mapped back to
 * the node (or key) that the user wrote, following `<<:` merge keys and aliases.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';

export type SpecPath = ReadonlyArray<string | number>;

export interface Position {
  line: number;
  col: number;
}

export interface YamlSyntaxProblem extends Position {
  message: string;
}

/** Renders a path the way users see it: `services.web.ports[0]`. */
export function formatPath(path: SpecPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

export class YamlSource {
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  constructor(private readonly text: string) {
    this.lines = new LineCounter();
    this.doc = parseDocument(text, { merge: true, prettyErrors: false, lineCounter: this.lines, uniqueKeys: true });
  }

  /** YAML syntax errors; when non-empty the document must not be used further. */
  syntaxProblems(): YamlSyntaxProblem[] {
    // One mistake often trips several parser errors on the same line; the first says it best.
    const seenLines = new Set<number>();
    const out: YamlSyntaxProblem[] = [];
    for (const e of this.doc.errors) {
      const pos = this.offsetToPos(e.pos[0]);
      if (seenLines.has(pos.line)) continue;
      seenLines.add(pos.line);
      out.push({ ...pos, message: humanizeYamlError(e.code, e.message, this.keyAt(e.pos[0])) });
    }
    return out;
  }

  /** YAML-level warnings (e.g. unknown tags): worth showing, not fatal. */
  syntaxWarnings(): YamlSyntaxProblem[] {
    return this.doc.warnings.map((w) => ({ ...this.offsetToPos(w.pos[0]), message: w.message }));
  }

  /** The text of a block key starting at `offset` (up to its colon), for naming it in messages. */
  private keyAt(offset: number): string {
    return (/^[^:\n]*/.exec(this.text.slice(offset))?.[0] ?? '').trim();
  }

  offsetToPos(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    // linePos reports line 0 before any newline was seen; users count from 1.
    return { line: Math.max(1, line), col: Math.max(1, col) };
  }

  /**
   * Position of `path`: its value node, or with `at: 'key'` the key naming it. A path that does
   * not exist (a missing key) resolves to the deepest ancestor that does.
   */
  locate(path: SpecPath, at: 'key' | 'value' = 'value'): Position {
    let node: unknown = this.doc.contents;
    let best = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const cur = this.deref(node);
      const seg = path[i]!;
      if (isMap(cur)) {
        const pair = this.findPair(cur.items as Pair[], String(seg), new Set());
        if (!pair) break;
        const keyStart = rangeStart(pair.key);
        if (i === path.length - 1 && at === 'key' && keyStart !== undefined) return this.offsetToPos(keyStart);
        node = pair.value;
        best = rangeStart(this.deref(node)) ?? keyStart ?? best;
      } else if (isSeq(cur) && typeof seg === 'number') {
        node = cur.items[seg];
        const start = rangeStart(this.deref(node));
        if (start === undefined) break;
        best = start;
      } else {
        break;
      }
    }
    return this.offsetToPos(best);
  }

  private deref(node: unknown): unknown {
    let n = node;
    // Alias chains are bounded by the document; guard anyway against a pathological cycle.
    for (let i = 0; i < 32 && isAlias(n); i++) n = n.resolve(this.doc);
    return n;
  }

  /** Finds `key` in a mapping, then in the mappings it merges with `<<:` (in merge order). */
  private findPair(items: Pair[], key: string, seen: Set<unknown>): Pair | undefined {
    for (const p of items) {
      if (isPair(p) && isScalar(p.key) && typeof p.key.value !== 'symbol' && String(p.key.value) === key) return p;
    }
    for (const p of items) {
      if (!isPair(p) || !isMergeKey(p.key)) continue;
      const sources = isSeq(p.value) ? p.value.items : [p.value];
      for (const src of sources) {
        const m = this.deref(src);
        if (!isMap(m) || seen.has(m)) continue;
        seen.add(m);
        const found = this.findPair(m.items as Pair[], key, seen);
        if (found) return found;
      }
    }
    return undefined;
  }
}

/** Start offset of a node; undefined for an absent value or an empty one (`key:` with nothing after it). */
function rangeStart(node: unknown): number | undefined {
  const r = (node as YamlNode | null | undefined)?.range;
  if (!r || r[0] === r[1]) return undefined;
  return r[0];
}

export function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (typeof key.value === 'symbol' || key.value === '<<');
}

function humanizeYamlError(code: string, message: string, token: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return `duplicate key${token ? ` "${token}"` : ''}: each key may appear only once in a mapping; remove or merge one of them`;
    case 'MULTIPLE_DOCS':
      return 'the file holds several YAML documents: a Compose file is one document, remove the `---` separator';
    case 'TAB_AS_INDENT':
      return 'tab used for indentation: YAML indents with spaces only';
    default:
      return `invalid YAML: ${message}`;
  }
}
