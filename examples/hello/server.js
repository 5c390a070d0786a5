// Berth example app: plain Node http, no dependencies.
//   GET /healthz     -> 200 "ok"
//   GET /            -> small HTML page (instance, hostname, version, request count)
//   GET /api/whoami  -> {"instance","version","pid","port","message"}
//   GET /api/slow?ms=N -> answers after N ms (max 30000): for drain tests
// SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0.
// SIGHUP: re-read CONFIG_FILE (the "message" in /api/whoami) in place.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');

const port = Number(process.env.PORT || 3000);
const version = process.env.APP_VERSION || 'v1';
const instance = process.env.BERTH_INSTANCE || os.hostname();
let requests = 0;
// Reload by signal: CONFIG_FILE (e.g. on a mounted volume) is read at start and again on SIGHUP,
// without restarting the process. HEALTH_FAIL=1 makes /healthz fail (to see a release rolled back).
const configFile = process.env.CONFIG_FILE;
let message = readMessage();
function readMessage() {
  try {
    return configFile ? fs.readFileSync(configFile, 'utf8').trim() : '';
  } catch {
    return '';
  }
}
process.on('SIGHUP', () => {
  message = readMessage();
  console.log(`SIGHUP: reloaded ${configFile}: ${JSON.stringify(message)}`);
});
let shuttingDown = false;

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const server = http.createServer((req, res) => {
  requests += 1;
  const path = (req.url || '/').split('?')[0];
  if (shuttingDown) res.setHeader('Connection', 'close');

  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' });
    res.end('method not allowed\n');
    return;
  }
  if (path === '/healthz') {
    if (process.env.HEALTH_FAIL === '1') {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('failing on purpose (HEALTH_FAIL=1)');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('ok');
    return;
  }
  if (path === '/api/whoami') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ instance, version, pid: process.pid, port, message }));
    return;
  }
  if (path === '/api/slow') {
    const ms = Math.min(Math.max(Number(new URL(req.url || '/', 'http://x').searchParams.get('ms')) || 1000, 0), 30000);
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify({ instance, version, waitedMs: ms }));
    }, ms);
    return;
  }
  if (path === '/') {
    const body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello from Berth</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem;color:#123}code{background:#eef;padding:0 .3em}</style></head>
<body>
<h1>Hello from Berth</h1>
<ul>
<li>instance: <code id="instance">${escapeHtml(instance)}</code></li>
<li>hostname: <code id="hostname">${escapeHtml(os.hostname())}</code></li>
<li>version: <code id="version">${escapeHtml(version)}</code></li>
<li>requests served: <code id="requests">${requests}</code></li>
</ul>
</body>
</html>
`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end('not found\n');
});

server.keepAliveTimeout = 5000;

server.listen(port, '0.0.0.0', () => {
  console.log(`hello ${version} (instance ${instance}) listening on 0.0.0.0:${port}`);
});

function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log(`${signal}: draining`);
  // Stop accepting; the callback runs once in-flight requests have finished.
  server.close(() => {
    console.log('drained, exiting');
    process.exit(0);
  });
  // Idle keep-alive sockets would hold close() open: drop them now.
  server.closeIdleConnections();
  // Safety net: never hang past the platform's stop timeout.
  setTimeout(() => {
    console.log('drain timeout, exiting');
    process.exit(0);
  }, 8000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
