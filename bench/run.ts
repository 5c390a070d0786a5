/**
 * `npm run bench -- NAME`: runs one benchmark. Progress goes to stderr; the last line of stdout is
 * one JSON object with the figures (contract in ARCHITECTURE.md §6).
 */
const BENCHES: Record<string, () => Promise<Record<string, number | string>>> = {
  deploy: async () => (await import('./deploy.ts')).run(),
  dns: async () => (await import('./dns.ts')).run(),
  failover: async () => (await import('./failover.ts')).run(),
  follow: async () => (await import('./follow.ts')).run(),
  https: async () => (await import('./https.ts')).run(),
  idle: async () => (await import('./idle.ts')).run(),
  pipeline: async () => (await import('./pipeline.ts')).run(),
  propagation: async () => (await import('./propagation.ts')).run(),
  logs: async () => (await import('./logs.ts')).run(),
  release: async () => (await import('./release.ts')).run(),
  network: async () => (await import('./network.ts')).run(),
  portal: async () => (await import('./portal.ts')).run(),
  scale: async () => (await import('./scale.ts')).run(),
};

const name = process.argv[2];
if (!name || !BENCHES[name]) {
  console.error(`usage: npm run bench -- NAME   (one of: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}
try {
  const result = await BENCHES[name]!();
  console.log(JSON.stringify(result));
} catch (err) {
  console.error(`bench ${name} failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
