// Berth example app: plain Node http, no dependencies.
//   GET /healthz     -> 200 "ok"
//   GET /            -> small HTML page (instance, hostname, version, request count)
//   GET /api/whoami  -> {"instance","version","pid","port"}
//   GET /api/slow?ms=N -> answers after N ms (max 30000): for drain tests
// SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0.
'use strict';

const http = require('node:http');
const os = require('node:os');

const port = Number(process.env.PORT || 3000);
const version = process.env.APP_VERSION || 'v1';
const instance = process.env.BERTH_INSTANCE || os.hostname();
let requests = 0;
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
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('ok');
    return;
  }
  if (path === '/api/whoami') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ instance, version, pid: process.pid, port }));
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
