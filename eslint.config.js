import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { roomsPlugin } from './scripts/eslint-rooms.mjs';

// Which room (folder of src/) may import which: the "Rooms" table of docs/DESIGN.md, checked by
// scripts/eslint-rooms.mjs. A room may always import itself; `type:X` allows `import type` only.
// Tests (*.test.ts) are not checked: like server/, they wire real adapters and fakes.
const ROOMS = {
  core: { may: [], packages: ['ajv', 'yaml', 'zod'], node: false },
  lib: { may: ['core/errors.ts', 'type:core/ports.ts'] },
  store: { may: ['core', 'lib'] },
  'engine/docker': { may: ['core', 'lib'] },
  'engine/fake': { may: ['core'] },
  ingress: { may: ['core', 'lib'] },
  registry: { may: ['core', 'lib'] },
  dns: { may: ['core'] },
  config: { may: ['core', 'lib'] },
  templates: { may: ['core', 'lib'] },
  reconcile: { may: ['core', 'lib'] },
  deploy: { may: ['core', 'lib', 'type:reconcile'] },
  purge: { may: ['core', 'type:reconcile'] },
  logs: { may: ['core', 'lib'] },
  metrics: { may: ['core', 'lib'] },
  alerts: { may: ['core', 'lib'] },
  build: { may: ['core', 'lib', 'images'] },
  images: { may: ['core', 'lib'] },
  auth: { may: ['core'] },
  tls: { may: ['core', 'lib', 'type:config'] },
  api: { may: ['core', 'auth', 'type:logs'] },
  client: { may: ['core'] },
  cli: { may: ['client', 'core'] },
  server: { may: ['*'] },
};

// Packages that belong to one technology's room (the engine speaks Docker, the API speaks HTTP, ...).
const PACKAGE_HOMES = {
  dockerode: ['engine/docker', 'server'],
  fastify: ['api', 'server'],
  commander: ['cli'],
  'better-sqlite3': ['lib', 'store', 'config', 'logs', 'metrics', 'tls'],
  'acme-client': ['tls'],
  '@peculiar/x509': ['tls'],
  'openid-client': ['auth'],
  ldapts: ['auth'],
  pino: ['lib'],
};

// Crossings the code makes today. Each is named by file and target so the rule holds for everything
// else; the `why` says what removes it. Add to this list only with a reason a reviewer accepts.
const ROOM_EXCEPTIONS = [
  // `berth server` runs the composition root in the CLI's process (loaded lazily so other verbs stay
  // light). By design, not a crossing to remove.
  { file: 'src/cli/commands/server.ts', to: 'server/index.ts', why: 'the `berth server` verb starts the server' },
  { file: 'src/cli/commands/edge.ts', to: 'server/index.ts', why: 'the `berth edge` verb starts the edge agent (nginx fed by the control plane) in its process' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'web/dist/**', 'web/.dist*/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  { files: ['src/cli/**', 'bench/**', 'test/**', 'scripts/**'], rules: { 'no-console': 'off' } },
  // Apps the end-to-end tests run in containers: plain CommonJS for Node.
  {
    files: ['test/fixtures/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', console: 'readonly', setTimeout: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // The web portal's room (docs/DESIGN.md): it runs in a browser and talks to the server only through
  // the typed client; from src/ it imports only src/client and src/core (wire types, pure code) — never
  // server code, Node's modules or a server-side package.
  {
    files: ['web/**/*.{ts,tsx}'],
    ignores: ['web/vite.config.ts', 'web/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { regex: '^(\\.\\./)+src/(?!client/|core/)', message: 'web imports only src/client (the typed client) and src/core (wire types) from the server\'s tree' },
          { regex: '^node:', message: 'web runs in a browser: no Node modules' },
          { group: ['fastify', 'dockerode', 'better-sqlite3', 'pino', 'commander'], message: 'a server package: reach the server through src/client' },
        ],
      }],
    },
  },
  // End-to-end tests read loosely-typed JSON from the API on purpose.
  { files: ['test/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  {
    files: ['src/**/*.ts'],
    plugins: { berth: roomsPlugin },
    rules: { 'berth/rooms': ['error', { rooms: ROOMS, packageHomes: PACKAGE_HOMES, exceptions: ROOM_EXCEPTIONS }] },
  },
  {
    // Label names are spelled once, in core/ports.ts (LABEL); tests spell them out on purpose.
    files: ['src/**/*.ts'],
    ignores: ['src/core/ports.ts', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: 'Literal[value=/^io\\.berth\\./]', message: 'use LABEL from core/ports.ts for io.berth.* label names' },
        { selector: 'TemplateElement[value.raw=/io\\.berth\\./]', message: 'use LABEL from core/ports.ts for io.berth.* label names' }],
    },
  },
  {
    // Server configuration is read from the environment once, in server/config.ts, and passed in. The
    // CLI is its own program: it reads its own settings (BERTH_URL, BERTH_TOKEN, BERTH_DATA_DIR), the
    // shell's variables for Compose interpolation, and hands the environment to `berth server`.
    files: ['src/**/*.ts'],
    ignores: ['src/server/config.ts', 'src/cli/**', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read configuration in src/server/config.ts (ServerConfig) and pass the value in' }],
    },
  },
);
