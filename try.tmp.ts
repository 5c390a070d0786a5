import { readFileSync } from 'node:fs';
import { parseAppSpec } from './src/core/spec/index.ts';
import { InvalidSpec } from './src/core/errors.ts';
const f = process.argv[2]!;
try {
  const r = parseAppSpec(readFileSync(f, 'utf8'), { file: f, env: { POSTGRES_PASSWORD: 'x' }, baseDir: '/srv/apps/blog', allowedBindRoots: ['/srv/apps'], readFile: (p) => (p.endsWith('api.env') ? 'A=1\nexport B="two words" # c\n' : undefined) });
  console.log(JSON.stringify(r, null, 1));
} catch (e) { if (e instanceof InvalidSpec) console.log(e.message); else throw e; }
