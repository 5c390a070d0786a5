/**
 * A small confd/consul-template style language, pure (no I/O):
 *
 *   {{range service "web.shop.prod"}}server {{.Address}}:{{.Port}}; # {{.ID}}
 *   {{end}}
 *   {{key "shop/prod/GREETING"}}          a configuration value (app/env/KEY)
 *   {{service_count "web.shop.prod"}}     how many healthy instances
 *   {{range service "db.prod"}}…{{end}}   an external service (registered per environment, no app)
 *   {{/* a comment *\/}}
 *
 * Service names are SERVICE.APP.ENV, like DNS names: two apps' services of the same name never mix.
 * Errors name the line and column of the template and what would be right.
 */
import { InvalidInput } from './errors.ts';

export interface TemplateInstance {
  ID: string;
  Address: string;
  Port: number;
  Service: string;
  /** The app (empty for an external service). */
  App: string;
  Env: string;
}

export interface TemplateData {
  /** Healthy instances of `service.app.env` (an app's service) or `service.env` (an external service); throws when there is no such name to ask for. */
  service(name: string): TemplateInstance[];
  /** A configuration value `app/env/KEY`, or undefined. */
  key(path: string): string | undefined;
}

type Node =
  | { t: 'text'; s: string }
  | { t: 'field'; name: string; at: Pos }
  | { t: 'key'; path: string; at: Pos }
  | { t: 'count'; service: string; at: Pos }
  | { t: 'range'; service: string; body: Node[]; at: Pos };

interface Pos {
  line: number;
  col: number;
}

const FIELDS = ['ID', 'Address', 'Port', 'Service', 'App', 'Env'];

/** `web.shop.prod` → service web of app shop in prod; `db.prod` → the external service db of prod (no app). */
export function parseServiceName(name: string): { service: string; app?: string; env: string } {
  const parts = name.split('.');
  if (parts.length === 3) return { service: parts[0]!, app: parts[1]!, env: parts[2]! };
  return { service: parts[0]!, env: parts[1]! };
}

export function parseTemplate(src: string, name = 'template'): Node[] {
  const tokens: { text?: string; action?: string; at: Pos }[] = [];
  let i = 0;
  const posOf = (k: number): Pos => {
    const before = src.slice(0, k).split('\n');
    return { line: before.length, col: before.at(-1)!.length + 1 };
  };
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      tokens.push({ text: src.slice(i), at: posOf(i) });
      break;
    }
    if (open > i) tokens.push({ text: src.slice(i, open), at: posOf(i) });
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw new InvalidInput(`${name}:${posOf(open).line}:${posOf(open).col}: "{{" is never closed: add "}}"`);
    tokens.push({ action: src.slice(open + 2, close).trim(), at: posOf(open) });
    i = close + 2;
  }
  let k = 0;
  const fail = (at: Pos, msg: string): never => {
    throw new InvalidInput(`${name}:${at.line}:${at.col}: ${msg}`);
  };
  const parseBlock = (rangeAt?: Pos): Node[] => {
    const inRange = rangeAt !== undefined;
    const out: Node[] = [];
    while (k < tokens.length) {
      const tok = tokens[k++]!;
      if (tok.text !== undefined) {
        out.push({ t: 'text', s: tok.text });
        continue;
      }
      const a = tok.action!;
      if (a.startsWith('/*')) continue;
      if (a === 'end') {
        if (!inRange) fail(tok.at, '"{{end}}" without a "{{range ...}}" to close');
        return out;
      }
      let m: RegExpExecArray | null;
      if ((m = /^\.([A-Za-z]+)$/.exec(a))) {
        if (!inRange) fail(tok.at, `"{{.${m[1]}}}" is only valid inside {{range service "SERVICE.APP.ENV"}}`);
        if (!FIELDS.includes(m[1]!)) fail(tok.at, `unknown field .${m[1]}: use one of ${FIELDS.map((f) => '.' + f).join(', ')}`);
        out.push({ t: 'field', name: m[1]!, at: tok.at });
      } else if ((m = /^range\s+service\s+"([a-z0-9-]+(?:\.[a-z0-9-]+){1,2})"$/.exec(a))) {
        const body = parseBlock(tok.at);
        out.push({ t: 'range', service: m[1]!, body, at: tok.at });
      } else if ((m = /^key\s+"([a-z0-9-]+\/[a-z0-9-]+\/[A-Z_][A-Z0-9_]*)"$/.exec(a))) {
        out.push({ t: 'key', path: m[1]!, at: tok.at });
      } else if ((m = /^service_count\s+"([a-z0-9-]+(?:\.[a-z0-9-]+){1,2})"$/.exec(a))) {
        out.push({ t: 'count', service: m[1]!, at: tok.at });
      } else {
        fail(tok.at, `cannot understand "{{${a}}}": write {{range service "web.shop.prod"}}…{{end}} (SERVICE.APP.ENV; SERVICE.ENV for an external service), ` +
          '{{.Address}}, {{.Port}}, {{key "app/env/KEY"}} or {{service_count "web.shop.prod"}}');
      }
    }
    if (rangeAt) fail(rangeAt, '"{{range ...}}" is never closed: add "{{end}}"');
    return out;
  };
  return parseBlock();
}

export function renderTemplate(nodes: Node[], data: TemplateData): string {
  const render = (ns: Node[], cur?: TemplateInstance): string => ns.map((n) => {
    switch (n.t) {
      case 'text': return n.s;
      case 'field': return String(cur![n.name as keyof TemplateInstance]);
      case 'key': return data.key(n.path) ?? '';
      case 'count': return String(data.service(n.service).length);
      case 'range': return data.service(n.service).map((inst) => render(n.body, inst)).join('');
    }
  }).join('');
  return render(nodes);
}

/** Services and config keys a template reads (to know which changes concern it). */
export function templateInputs(nodes: Node[]): { services: string[]; keys: string[] } {
  const services = new Set<string>();
  const keys = new Set<string>();
  const walk = (ns: Node[]) => {
    for (const n of ns) {
      if (n.t === 'range') {
        services.add(n.service);
        walk(n.body);
      } else if (n.t === 'count') services.add(n.service);
      else if (n.t === 'key') keys.add(n.path);
    }
  };
  walk(nodes);
  return { services: [...services], keys: [...keys] };
}
