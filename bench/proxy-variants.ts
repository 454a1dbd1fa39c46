/**
 * Bare proxy variants for bench/proxy-floor.ts and the calibration proxies of bench/wado.ts: each
 * is JavaScript run with `node -e CODE TARGET_URL` (cwd = the repo, so require('undici')
 * resolves) and prints "PORT n" once it listens. No parsing, no DB, no auth: what one extra Node
 * hop costs on this machine, by technique.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const PRELUDE = `const http = require('http'); const net = require('net'); const T = new URL(process.argv[1]);
const up = (q) => ({ host: T.hostname, port: T.port, path: T.pathname + q.url, headers: { accept: q.headers.accept, 'accept-encoding': 'identity' } });
const listen = (srv) => srv.listen(0, '127.0.0.1', function () { console.log('PORT ' + this.address().port); });
// survive to report: undici 7.30 can throw an uncatchable assert(!this.paused) from its socket 'end'
// handler when a close-delimited body ends while backpressure has paused its parser (nodejs/undici#5360)
process.on('uncaughtException', (e) => console.error('[variant] uncaught: ' + e.message));
`;

/** The onread variant's server code for a read buffer of `bytes`. */
function httpOnread(bytes: number): string {
  return `listen(http.createServer((q, s) => {
  let head = null, inBody = false, pending = 0;
  const flushed = () => { if (--pending === 0) u.resume(); };
  const u = net.connect({ port: Number(T.port), host: T.hostname, onread: { buffer: Buffer.allocUnsafe(${bytes}), callback(n, b) {
    let body = b.subarray(0, n);
    if (!inBody) {
      head = head ? Buffer.concat([head, body]) : Buffer.from(body);
      const i = head.indexOf('\\r\\n\\r\\n'); if (i < 0) return true;
      const lines = head.toString('latin1', 0, i).split('\\r\\n'); const h = {};
      for (const l of lines.slice(1)) { const k = l.indexOf(':'); h[l.slice(0, k).toLowerCase()] = l.slice(k + 1).trim(); }
      s.writeHead(Number(lines[0].split(' ')[1]), { 'content-type': h['content-type'] });
      inBody = true; body = head.subarray(i + 4);
      if (body.length) s.write(body);
      return true;
    }
    pending++; s.write(body, flushed); u.pause(); return false;
  } } }, () => u.write('GET ' + T.pathname + q.url + ' HTTP/1.1\\r\\nhost: ' + T.host + '\\r\\naccept: ' + q.headers.accept + '\\r\\naccept-encoding: identity\\r\\nconnection: close\\r\\n\\r\\n'));
  u.on('end', () => s.end()); u.on('error', () => s.destroy()); s.on('close', () => u.destroy());
}));`;
}

/** Each variant: JavaScript run with `node -e` (cwd = repo, so require('undici') resolves). */
export const VARIANTS: Record<string, { what: string; code: string }> = {
  'http-pipe': {
    what: 'http.request + pipe, chunked out (bench:wado calibration proxy)',
    code: `listen(http.createServer((q, s) => {
  http.request(up(q), (r) => { s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] }); r.pipe(s); }).end();
}));`,
  },
  'http-pipe-cl': {
    what: 'http.request + pipe, Content-Length forwarded when the upstream sent one',
    code: `listen(http.createServer((q, s) => {
  http.request(up(q), (r) => {
    const h = { 'content-type': r.headers['content-type'] };
    if (r.headers['content-length']) h['content-length'] = r.headers['content-length'];
    s.writeHead(r.statusCode, h); r.pipe(s);
  }).end();
}));`,
  },
  'http-hwm': {
    what: 'http.request + pipe, 1 MiB highWaterMark on server and response streams',
    code: `listen(http.createServer({ highWaterMark: 1 << 20 }, (q, s) => {
  http.request({ ...up(q), highWaterMark: 1 << 20 }, (r) => { s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] }); r.pipe(s); }).end();
}));`,
  },
  'http-data': {
    what: "http.request, 'data' handler → res.write, pause/resume on drain (no pipe)",
    code: `listen(http.createServer((q, s) => {
  http.request(up(q), (r) => {
    s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] });
    r.on('data', (c) => { if (!s.write(c)) { r.pause(); s.once('drain', () => r.resume()); } });
    r.on('end', () => s.end());
  }).end();
}));`,
  },
  'http-cork': {
    what: "http.request, 'data' → corked res.write, uncork once per event-loop turn (writev batches)",
    code: `listen(http.createServer((q, s) => {
  http.request(up(q), (r) => {
    s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] });
    let corked = false;
    const flush = () => { corked = false; s.uncork(); };
    r.on('data', (c) => {
      if (!corked) { corked = true; s.cork(); setImmediate(flush); }
      if (!s.write(c)) { r.pause(); s.once('drain', () => r.resume()); }
    });
    r.on('end', () => { if (corked) flush(); s.end(); });
  }).end();
}));`,
  },
  'undici-request': {
    what: 'undici Pool.request + body.pipe(res) (what the gateway used)',
    code: `const { Pool } = require('undici'); const pool = new Pool(T.origin, { connections: 8 });
listen(http.createServer(async (q, s) => {
  const r = await pool.request({ method: 'GET', ...up(q) });
  s.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] }); r.body.pipe(s);
}));`,
  },
  'undici-stream': {
    what: 'undici Pool.stream, factory returns res',
    code: `const { Pool } = require('undici'); const pool = new Pool(T.origin, { connections: 8 });
listen(http.createServer((q, s) => {
  pool.stream({ method: 'GET', ...up(q) }, ({ statusCode, headers }) => { s.writeHead(statusCode, { 'content-type': headers['content-type'] }); return s; }).catch(() => s.destroy());
}));`,
  },
  'undici-dispatch': {
    what: 'undici Pool.dispatch handler: onResponseData → res.write, controller.pause/resume',
    code: `const { Pool } = require('undici'); const pool = new Pool(T.origin, { connections: 8 });
listen(http.createServer((q, s) => {
  pool.dispatch({ method: 'GET', ...up(q) }, {
    onRequestStart() {},
    onResponseStart(ctl, status, headers) { s.writeHead(status, { 'content-type': headers['content-type'] }); s.on('drain', () => ctl.resume()); },
    onResponseData(ctl, c) { if (!s.write(c)) ctl.pause(); },
    onResponseEnd() { s.end(); },
    onResponseError(ctl, err) { s.destroy(err); },
  });
}));`,
  },
  'http-onread': {
    what: 'HTTP server (ServerResponse, chunked out) + raw upstream socket (Connection: close; body = the rest of the connection, as Orthanc sends it) read into a static 1 MiB onread buffer; slices written by reference, reads paused until the write callback',
    code: httpOnread(1 << 20),
  },
  'http-onread-256k': {
    what: 'HTTP server (ServerResponse, chunked out) + raw upstream socket read into a static 256 KiB onread buffer; slices written by reference, reads paused until the write callback',
    code: httpOnread(1 << 18),
  },
  'net-pipe': {
    what: 'TCP relay (no HTTP at all): net.Socket pipe both ways',
    code: `listen(net.createServer((c) => { const u = net.connect(Number(T.port), T.hostname); c.pipe(u); u.pipe(c); u.on('error', () => c.destroy()); c.on('error', () => u.destroy()); }));`,
  },
  'net-onread-64k': {
    what: 'as net-onread with a 64 KiB static buffer (the default read size, but reused)',
    code: `listen(net.createServer((c) => {
  const buf = Buffer.allocUnsafe(1 << 16); let waiting = false;
  const u = net.connect({ port: Number(T.port), host: T.hostname, onread: { buffer: buf, callback(n, b) {
    // written at once (the usual case) → read on; else wait for this write's callback ('drain'
    // alone can hang: it only comes when the pending rest reached the highWaterMark)
    c.write(b.subarray(0, n), () => { if (waiting) { waiting = false; u.resume(); } });
    if (c.writableLength > 0) { waiting = true; u.pause(); return false; }
    return true;
  } } });
  u.on('end', () => c.end());
  c.pipe(u); u.on('error', () => c.destroy()); c.on('error', () => u.destroy());
}));`,
  },
  'net-onread-copy': {
    what: 'as net-onread, but each read is copied into a fresh Buffer before it is written',
    code: `listen(net.createServer((c) => {
  const buf = Buffer.allocUnsafe(1 << 20);
  const u = net.connect({ port: Number(T.port), host: T.hostname, onread: { buffer: buf, callback(n, b) {
    if (!c.write(Buffer.from(b.subarray(0, n)))) { u.pause(); c.once('drain', () => u.resume()); return false; }
    return true;
  } } });
  u.on('end', () => c.end());
  c.pipe(u); u.on('error', () => c.destroy()); c.on('error', () => u.destroy());
}));`,
  },
  'net-onread': {
    what: 'TCP relay, upstream read with a static 1 MiB onread buffer, reads paused until a write that did not complete at once has been flushed (zero-copy)',
    code: `listen(net.createServer((c) => {
  const buf = Buffer.allocUnsafe(1 << 20); let waiting = false;
  const u = net.connect({ port: Number(T.port), host: T.hostname, onread: { buffer: buf, callback(n, b) {
    // written at once (the usual case) → read on; else wait for this write's callback ('drain'
    // alone can hang: it only comes when the pending rest reached the highWaterMark)
    c.write(b.subarray(0, n), () => { if (waiting) { waiting = false; u.resume(); } });
    if (c.writableLength > 0) { waiting = true; u.pause(); return false; }
    return true;
  } } });
  u.on('end', () => c.end());
  c.pipe(u); u.on('error', () => c.destroy()); c.on('error', () => u.destroy());
}));`,
  },
};


/** Spawn one variant in front of `target` (a DICOMweb base URL); resolves to its base URL and process. */
export async function startVariant(name: string, target: string): Promise<{ url: string; proc: ChildProcess }> {
  const v = VARIANTS[name];
  if (!v) throw new Error(`no proxy variant ${name}`);
  const proc = spawn(process.execPath, ['-e', PRELUDE + v.code, target], { cwd: path.resolve(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      const m = /PORT (\d+)/.exec(String(c));
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`proxy variant ${name} exited ${code}`)));
  });
  // the TCP relays forward to Orthanc's root: the client's path keeps the DICOMweb prefix
  return { url: name.startsWith('net-') ? `http://127.0.0.1:${port}${new URL(target).pathname}` : `http://127.0.0.1:${port}`, proc };
}
