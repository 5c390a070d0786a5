#!/usr/bin/env node
// The unit stage's build (scripts/test.sh): bundles each unit test file (src/**/*.test.ts,
// web/src/**/*.test.ts) with what it imports from the repository into OUTDIR (same relative paths,
// .mjs; code shared between test files in chunks beside them; packages stay imports, so OUTDIR must be
// inside the repository to find node_modules). Plain `node --test` then runs them without tsx's loader,
// whose hooks thread and per-module round trips cost each test file ~1 s of CPU, more than most of
// the tests in it. The transform is tsx's own (esbuild, same tsconfig).
// Usage: node scripts/build-unit.mjs OUTDIR FILE...
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

// The esbuild that tsx runs (a dependency of tsx, not of Berth).
const require = createRequire(import.meta.url);
const esbuild = createRequire(require.resolve('tsx/package.json'))('esbuild');

const [outdir, ...files] = process.argv.slice(2);
// Each module keeps its own import.meta.url/dirname/filename (a bundle would otherwise give every
// module the bundle's): tests read fixtures and the server finds its files relative to their source.
const metaPlugin = {
  name: 'import-meta-of-the-source',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      if (text.includes('import.meta')) {
        text = text
          .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
          .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)))
          .replaceAll('import.meta.filename', JSON.stringify(args.path));
      }
      return { contents: text, loader: 'ts' };
    });
  },
};
await esbuild.build({
  entryPoints: files.map((f) => ({ in: f, out: f.replace(/\.ts$/, '') })),
  outdir, outExtension: { '.js': '.mjs' }, bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  packages: 'external', sourcemap: 'linked', logLevel: 'warning', plugins: [metaPlugin],
});
