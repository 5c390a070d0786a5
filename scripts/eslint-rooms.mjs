// ESLint rule `berth/rooms`: the "Rooms" table of docs/DESIGN.md (which folder of src/ may import
// which) as a lint error, so a crossed room fails `npm test`'s lint stage.
//
// Options (one object, see eslint.config.js for Berth's table):
//   rooms:      { ROOM: { may: [TARGET...], packages?: [NAME...], node?: boolean } }
//               ROOM is a folder of src/ (`api`, `engine/docker`). A file's own room is always allowed.
//               TARGET is a room (`core`), a file of a room (`core/errors.ts`), or either prefixed with
//               `type:` (only `import type` / inline `type` specifiers). `*` allows every room.
//               packages: the only npm packages the room may import (absent: any);
//               node: false forbids node:* and Node's built-in modules.
//   packageHomes: { PACKAGE: [ROOM...] } — the only rooms that may import that package.
//   exceptions: [{ file, to, why }] — `file` (path from the repository root) may import `to` (a room
//               or a file of one) although its room may not. Each must say why; they are the
//               crossings left for the restructuring of issue 11.
//
// Files outside src/, and tests (`*.test.ts`: they wire real adapters and fakes like server/ does),
// are not checked. Relative specifiers are resolved against the importing file; bare specifiers are
// packages (`@scope/name` or `name`), `node:x` and built-in names are Node's.
import { builtinModules } from 'node:module';
import path from 'node:path';

const BUILTINS = new Set(builtinModules);

/** 'src/engine/docker/x.ts' → 'engine/docker'; 'src/core/spec/a.ts' → 'core'; outside src/ → undefined. */
export function roomOf(rel) {
  const parts = rel.split('/');
  if (parts[0] !== 'src' || parts.length < 3) return undefined;
  if (parts[1] === 'engine' && parts.length >= 4) return `engine/${parts[2]}`;
  return parts[1];
}

function parseTarget(t) {
  const typesOnly = t.startsWith('type:');
  const name = typesOnly ? t.slice(5) : t;
  return { typesOnly, name };
}

/** Does `target` (path from src/, e.g. `core/errors.ts`, or `*`) cover the file `relFromSrc`? */
function covers(name, relFromSrc) {
  if (name === '*') return true;
  if (/\.[cm]?[jt]sx?$/.test(name)) return relFromSrc === name;
  return relFromSrc === name || relFromSrc.startsWith(`${name}/`);
}

function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function describe(may) {
  return may.map((t) => {
    const { typesOnly, name } = parseTarget(t);
    return typesOnly ? `${name} (types)` : name;
  }).join(', ') || 'no other room';
}

/** Is this import/export node type-only (`import type`, `export type`, or every specifier inline `type`)? */
function typeOnly(node) {
  if (node.type === 'TSImportType') return true;
  if (node.importKind === 'type' || node.exportKind === 'type') return true;
  const specs = node.specifiers ?? [];
  return specs.length > 0 && specs.every((s) => s.importKind === 'type' || s.exportKind === 'type');
}

export const roomsRule = {
  meta: {
    type: 'problem',
    docs: { description: 'keep the rooms of src/ apart (docs/DESIGN.md, "Rooms")' },
    schema: [{ type: 'object', additionalProperties: true }],
    messages: {
      room: '{{from}}/ may not import {{target}}: {{from}}/ may import {{allowed}} (docs/DESIGN.md, "Rooms"). Move the shared piece to core/ (types, pure functions) or take it through a port from server/.',
      node: '{{from}}/ may not import Node\'s "{{spec}}": {{from}}/ is pure (no node:*, no I/O; docs/DESIGN.md, "Rooms").',
      package: '{{from}}/ may not import the package "{{pkg}}": it may import {{allowed}} (docs/DESIGN.md, "Rooms").',
      unknown: 'src/{{from}}/ is not in the rooms table of eslint.config.js: add it (and a row to docs/DESIGN.md, "Rooms") saying which rooms it may import.',
      home: 'only {{homes}} may import "{{pkg}}" ({{from}}/ may not; docs/DESIGN.md, "Rooms").',
    },
  },
  create(context) {
    const opts = context.options[0] ?? {};
    const rooms = opts.rooms ?? {};
    const homes = opts.packageHomes ?? {};
    const exceptions = opts.exceptions ?? [];
    const cwd = context.cwd ?? process.cwd();
    const filename = context.physicalFilename ?? context.filename;
    const rel = path.relative(cwd, filename).split(path.sep).join('/');
    const from = roomOf(rel);
    if (!from || /\.test\.[cm]?[jt]sx?$/.test(rel)) return {};
    const room = rooms[from];
    const mine = exceptions.filter((e) => e.file === rel);

    function check(node, source) {
      if (!source || typeof source.value !== 'string') return;
      const spec = source.value;
      if (spec.startsWith('.') || spec.startsWith('/')) {
        const abs = path.resolve(path.dirname(filename), spec);
        const target = path.relative(cwd, abs).split(path.sep).join('/');
        const to = roomOf(target);
        if (!to || to === from) return;
        if (!room) {
          context.report({ node: source, messageId: 'unknown', data: { from } });
          return;
        }
        const fromSrc = target.slice('src/'.length);
        const isType = typeOnly(node);
        const ok = room.may.some((t) => {
          const { typesOnly, name } = parseTarget(t);
          return covers(name, fromSrc) && (!typesOnly || isType);
        }) || mine.some((e) => covers(e.to, fromSrc));
        if (!ok) context.report({ node: source, messageId: 'room', data: { from, target: target, allowed: describe(room.may) } });
        return;
      }
      if (spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0])) {
        if (room && room.node === false) context.report({ node: source, messageId: 'node', data: { from, spec } });
        return;
      }
      const pkg = packageName(spec);
      if (room?.packages && !room.packages.includes(pkg)) {
        context.report({ node: source, messageId: 'package', data: { from, pkg, allowed: room.packages.join(', ') } });
        return;
      }
      const home = homes[pkg];
      if (home && !home.includes(from)) context.report({ node: source, messageId: 'home', data: { from, pkg, homes: home.map((h) => `${h}/`).join(', ') } });
    }

    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => { if (node.source.type === 'Literal') check(node, node.source); },
      TSImportType: (node) => {
        const arg = node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument;
        if (arg?.type === 'Literal') check(node, arg);
      },
    };
  },
};

export const roomsPlugin = { rules: { rooms: roomsRule } };
