import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { edgeToken } from '../core/edge.ts';
import { loadEdgeConfig } from './edge.ts';

const token = edgeToken('edge-1', 'b'.repeat(64));

test('berth edge: flags parsed once, each mistake named with what would be right', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-edge-cfg-'));
  try {
    const file = join(dir, 'edge.token');
    await writeFile(file, `${token}\n`);
    const cfg = await loadEdgeConfig({ control: 'https://10.0.0.5:7070/', tokenFile: file, dataDir: dir, port: '8080' }, {});
    assert.deepEqual({ ...cfg, nginxBin: undefined }, {
      control: 'https://10.0.0.5:7070', token, host: 'edge-1', dataDir: dir, port: 8080, httpsPort: 443, tlsDir: '/run/berth-edge/tls', adminPort: 7071,
      listenAddress: '0.0.0.0', waitSeconds: 25, nginxBin: undefined, nice: -5,
    });
    assert.equal((await loadEdgeConfig({}, { BERTH_EDGE_CONTROL: 'http://c:1', BERTH_EDGE_TOKEN: token, BERTH_NICE: '0' })).nice, 0);
    await assert.rejects(loadEdgeConfig({}, { BERTH_EDGE_CONTROL: 'http://c:1', BERTH_EDGE_TOKEN: token, BERTH_NICE: '-30' }), /BERTH_NICE "-30" is not a nice value: write a whole number from -20/);
    assert.equal((await loadEdgeConfig({}, { BERTH_EDGE_CONTROL: 'http://c:1', BERTH_EDGE_TOKEN: token })).dataDir, '/var/lib/berth-edge');
    const refuses = async (flags: Parameters<typeof loadEdgeConfig>[0], re: RegExp) => assert.rejects(loadEdgeConfig(flags, {}), re);
    await refuses({ token }, /--control is missing: the control plane's URL/);
    await refuses({ control: 'ftp://x', token }, /--control "ftp:\/\/x" is not the control plane's URL: write it like https:/);
    await refuses({ control: 'http://u:p@x:1', token }, /is not the control plane's URL/);
    await refuses({ control: 'http://x:1' }, /--token or --token-file is missing: `berth host add --pool edge --name HOST`/);
    await refuses({ control: 'http://x:1', tokenFile: join(dir, 'nope') }, /--token-file .*nope: no such file/);
    await refuses({ control: 'http://x:1', token: 'berth_admin' }, /not one Berth made/);
    await refuses({ control: 'http://x:1', token, port: '99999' }, /--port "99999" is not a port/);
    await refuses({ control: 'http://x:1', token, adminPort: 'x' }, /--admin-port "x" is not a port/);
    await refuses({ control: 'http://x:1', token, httpsPort: '0' }, /--https-port "0" is not a port/);
    await refuses({ control: 'http://x:1', token, port: '8443', httpsPort: '8443' }, /--port and --https-port are both 8443: each needs a port of its own/);
    await refuses({ control: 'http://x:1', token, listen: 'any' }, /--listen "any" is not an IP address/);
    await refuses({ control: 'http://x:1', token, waitSeconds: '61' }, /--wait-seconds "61" must be a whole number of seconds 0-60/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
