/**
 * Unit tests for the retrieval streaming path: MultipartParser's boundary scan across chunk edges
 * (every split offset, input in a reused buffer as the upstream reader delivers it), the HTTP/1.1
 * response reader (chunked / Content-Length / close-delimited, split at every offset, malformed
 * input) and one upstream exchange against a real socket (the buffer-reuse contract, timeouts,
 * abort, slots released exactly once).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { ConnectionPool, exchange, HttpParseError, ResponseReader, Slots, type Headers, type StreamResponse } from '../../src/dicomweb/http1.js';
import { MultipartError, MultipartParser, PART_HEAD } from '../../src/dicomweb/multipart.js';
import { dicomPart, multipartBody, splitMultipart } from '../helpers/fake-upstream.js';

const BOUNDARY = 'b0-xyz';
const CT = `multipart/related; boundary=${BOUNDARY}`;

/**
 * Feed `pieces` to a parser the way the upstream reader does: each piece copied into ONE reused
 * buffer and passed as a view, the buffer scribbled over after write() returns. Output is copied
 * when `out` is called (a consumer that writes it before returning). Anything the parser kept by
 * reference instead of copying shows up as corrupted output.
 */
function runParser(pieces: Buffer[], keep: (uid: string) => boolean, o: { outBoundary?: string; headSentinel?: boolean } = {}): { out: Buffer; parser: MultipartParser } {
  const out: Buffer[] = [];
  const parser = new MultipartParser({ boundary: BOUNDARY, outBoundary: o.outBoundary ?? BOUNDARY, keep, headSentinel: o.headSentinel }, (b) => out.push(b === PART_HEAD ? Buffer.from('<HEAD>') : Buffer.from(b)));
  const reused = Buffer.alloc(Math.max(1, ...pieces.map((p) => p.length)));
  for (const p of pieces) {
    p.copy(reused);
    parser.write(reused.subarray(0, p.length));
    reused.fill(0x0d); // '\r' everywhere: a kept view would now read as a delimiter start
  }
  parser.end();
  return { out: Buffer.concat(out), parser };
}

const split = (b: Buffer, ...at: number[]): Buffer[] => {
  const cuts = [0, ...at, b.length];
  return cuts.slice(1).map((e, i) => b.subarray(cuts[i]!, e));
};

describe('MultipartParser: boundary scan across chunk edges', () => {
  // part data full of near-delimiters: CR LF, "--", the boundary without its CRLF, a delimiter
  // missing its last byte, runs of '\r'
  const tease = Buffer.from(`\r\r\n\r\n-\r\n--\r\n--b0-xy\r\n--b0-xyZ--${BOUNDARY}\r\r\n-\r`, 'latin1');
  const sops = ['1.2.3.1', '1.2.3.2', '1.2.3.3', '1.2.3.4'];
  const parts = sops.map((u, i) => Buffer.concat([dicomPart(u, 40 + i * 9, { fill: 0x0d }), tease, i % 2 ? Buffer.from('\r') : Buffer.from('\r\n-')]));
  const body = multipartBody(parts, BOUNDARY);
  const keep = (u: string) => u === '1.2.3.2' || u === '1.2.3.4';
  const expected = multipartBody([parts[1]!, parts[3]!], BOUNDARY);

  it('two chunks, split at every offset: kept parts byte-identical, dropped parts gone', () => {
    for (let k = 0; k <= body.length; k++) {
      const { out, parser } = runParser(split(body, k), keep);
      assert.ok(out.equals(expected), `split at ${k}`);
      assert.equal(parser.partsIn, 4);
      assert.equal(parser.partsDropped, 2);
    }
  });

  it('three chunks around every delimiter: every pair of offsets within ±(delimiter length + 3)', () => {
    const delim = Buffer.from(`\r\n--${BOUNDARY}`);
    const at: number[] = [0]; // the first delimiter opens the body (no CRLF before it)
    for (let i = body.indexOf(delim); i >= 0; i = body.indexOf(delim, i + 1)) at.push(i);
    assert.equal(at.length, 5);
    for (const d of at) {
      const lo = Math.max(0, d - 3), hi = Math.min(body.length, d + delim.length + 3);
      for (let a = lo; a <= hi; a++) {
        for (let b = a; b <= hi; b++) {
          const { out } = runParser(split(body, a, b), keep);
          assert.ok(out.equals(expected), `splits ${a}, ${b}`);
        }
      }
    }
  });

  it('one byte at a time, all kept → output equals input; part heads as sentinels', () => {
    const bytes = [...body].map((x) => Buffer.from([x]));
    assert.ok(runParser(bytes, () => true).out.equals(body));
    const { out } = runParser(split(body, 333), keep, { headSentinel: true });
    assert.equal(out.toString('latin1').split('<HEAD>').length - 1, 2);
  });

  it('a part is passed through by reference in one piece per chunk when no delimiter is near its end', () => {
    const outs: Buffer[] = [];
    const p = new MultipartParser({ boundary: BOUNDARY, outBoundary: BOUNDARY, keep: () => true }, (b) => outs.push(b));
    const big = dicomPart('1.2.3.9', 100_000, { fill: 7 });
    const whole = multipartBody([big], BOUNDARY);
    const first = whole.subarray(0, 50_000);
    const second = whole.subarray(50_000, 90_000);
    p.write(first);
    const n = outs.length;
    p.write(second);
    assert.equal(outs.length, n + 1, 'one output for a chunk inside the part');
    assert.equal(outs[n]!.buffer, second.buffer, 'same memory: no copy');
    assert.equal(outs[n]!.byteOffset, second.byteOffset);
    assert.equal(outs[n]!.length, second.length);
  });

  it('malformed multipart from the upstream is an error', () => {
    const bad = (s: string | Buffer, pieces = 1) => () => {
      const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
      runParser(pieces === 1 ? [b] : split(b, Math.floor(b.length / 2)), () => true);
    };
    assert.throws(bad(body.subarray(0, body.length - 3)), MultipartError); // no close delimiter
    assert.throws(bad(body.subarray(0, 60), 2), MultipartError); // ends inside a part's headers
    assert.throws(bad(`--${BOUNDARY}junk\r\n\r\nx\r\n--${BOUNDARY}--`), /delimiter line/);
    assert.throws(bad(`--${BOUNDARY}${'x'.repeat(300)}`), /delimiter line/);
    assert.throws(bad(`--${BOUNDARY}\r\n${'H: v\r\n'.repeat(4000)}`, 2), /headers too large/);
    assert.throws(bad('no delimiter at all'), /close delimiter/);
    assert.throws(bad(''), /close delimiter/);
  });

  it('a part without headers and an empty part; preamble and transport padding', () => {
    const one = dicomPart('1.2.3.7', 10);
    const raw = Buffer.concat([Buffer.from(`preamble\r\n--${BOUNDARY} \t\r\n\r\n`), one, Buffer.from(`\r\n--${BOUNDARY}\r\n\r\n\r\n--${BOUNDARY}--epilogue`)]);
    for (let k = 0; k <= raw.length; k++) {
      const { out, parser } = runParser(split(raw, k), () => true);
      const got = splitMultipart(out, CT);
      assert.equal(got.length, 1, `split ${k}`);
      assert.ok(got[0]!.body.equals(one));
      assert.equal(parser.partsIn, 2);
      assert.equal(parser.partsDropped, 1); // the empty part has no SOP Instance UID
    }
  });

  /** As multipartBody, each part declaring its Content-Length (as Orthanc's parts do). */
  const counted = (ps: Buffer[], lengths = ps.map((x) => x.length)) =>
    Buffer.concat([...ps.flatMap((x, i) => [Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\nContent-Length: ${lengths[i]}\r\n\r\n`), x, Buffer.from('\r\n')]), Buffer.from(`--${BOUNDARY}--\r\n`)]);

  it('parts with a Content-Length: split at every offset, the same parts kept byte-identical as by the boundary scan', () => {
    const cbody = counted(parts);
    for (let k = 0; k <= cbody.length; k++) {
      const { out, parser } = runParser(split(cbody, k), keep);
      const got = splitMultipart(out, CT);
      assert.deepEqual(got.map((g) => g.body), [parts[1], parts[3]], `split at ${k}`);
      assert.equal(parser.partsIn, 4);
      assert.equal(parser.partsDropped, 2);
    }
  });

  it('a Content-Length that does not end at a delimiter is a malformed body', () => {
    for (const delta of [-1, 1, 5]) {
      const bad = counted(parts, parts.map((x, i) => x.length + (i === 1 ? delta : 0)));
      for (const k of [0, 100, bad.length >> 1]) assert.throws(() => runParser(split(bad, k), keep), /Content-Length/, `delta ${delta}, split ${k}`);
    }
    // the last part's declared end lands just before a near-delimiter
    const bad = counted([parts[0]!], [parts[0]!.length - 3]);
    for (let k = 0; k <= bad.length; k++) assert.throws(() => runParser(split(bad, k), keep), MultipartError, `split ${k}`);
  });
});

// ---------------------------------------------------------------------------------------------

function read(pieces: Buffer[], eof = true): { status: number; headers: Headers; body: Buffer; ended: number } {
  const got = { status: 0, headers: {} as Headers, body: [] as Buffer[], ended: 0 };
  const r = new ResponseReader({
    head: (s, h) => {
      got.status = s;
      got.headers = h;
    },
    body: (b) => got.body.push(Buffer.from(b)),
    end: () => got.ended++,
  });
  const reused = Buffer.alloc(Math.max(1, ...pieces.map((p) => p.length)));
  for (const p of pieces) {
    p.copy(reused);
    r.feed(reused.subarray(0, p.length));
    reused.fill(0x41);
  }
  if (eof) r.eof();
  return { ...got, body: Buffer.concat(got.body) };
}

describe('ResponseReader (HTTP/1.1 response framing)', () => {
  const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));
  const chunked = Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: multipart/related; boundary=x\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n'),
    Buffer.from('64\r\n'), payload.subarray(0, 100), Buffer.from('\r\n'),
    Buffer.from('1;ext=1\r\n'), payload.subarray(100, 101), Buffer.from('\r\n'),
    Buffer.from('0C7 \r\n'), payload.subarray(101), Buffer.from('\r\n'),
    Buffer.from('0\r\nTrailer: t\r\n\r\n'),
  ]);

  it('chunked, split at every offset (and in three at every pair near the chunk lines)', () => {
    for (let k = 0; k <= chunked.length; k++) {
      const g = read(split(chunked, k));
      assert.equal(g.status, 200, `split ${k}`);
      assert.ok(g.body.equals(payload), `split ${k}`);
      assert.equal(g.ended, 1);
      assert.deepEqual(g.headers['x-a'], ['1', '2']);
    }
    const at = chunked.indexOf('0C7');
    for (let a = at - 4; a < at + 8; a++) for (let b = a; b < at + 8; b++) assert.ok(read(split(chunked, a, b)).body.equals(payload), `${a},${b}`);
  });

  it('Content-Length and close-delimited bodies, split at every offset; bytes after the body ignored', () => {
    const cl = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`), payload, Buffer.from('garbage')]);
    const close = Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n'), payload]);
    for (let k = 0; k <= cl.length; k++) {
      const g = read(split(cl, k));
      assert.ok(g.body.equals(payload) && g.ended === 1, `cl split ${k}`);
    }
    for (let k = 0; k <= close.length; k++) {
      const g = read(split(close, k));
      assert.ok(g.body.equals(payload) && g.ended === 1, `close split ${k}`);
    }
  });

  it('1xx interim responses are skipped; 204 and Content-Length: 0 end at the head', () => {
    const g = read([Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc')]);
    assert.equal(g.status, 200);
    assert.equal(g.body.toString(), 'abc');
    assert.equal(read([Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')], false).ended, 1);
    assert.equal(read([Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')], false).ended, 1);
  });

  it('truncated and malformed responses throw HttpParseError', () => {
    const bad = (s: string | Buffer, eof = true) => () => read([Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1')], eof);
    assert.throws(bad(chunked.subarray(0, chunked.length - 5)), HttpParseError); // chunked without its last chunk
    assert.throws(bad('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), /truncated/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nContent-Le'), /before its response head/);
    assert.throws(bad('HTTP/2 200\r\n\r\n'), /status line/);
    assert.throws(bad('ICY 200 OK\r\n\r\n'), /status line/);
    assert.throws(bad('HTTP/1.1 200 OK\r\n folded: x\r\n\r\n'), /header field/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n'), /Content-Length/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'), /Content-Length/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), /chunk size/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n'), /longer than its size/);
    assert.throws(bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n'), /CRLF/);
    assert.throws(bad(`HTTP/1.1 200 OK\r\n${'X: y\r\n'.repeat(20_000)}`, false), /too large/);
  });
});

// ---------------------------------------------------------------------------------------------

async function server(handler: (sock: net.Socket, request: string) => void): Promise<{ port: number; close: () => Promise<void>; conns: () => number }> {
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const s = net.createServer((sock) => {
    conns++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let req = '';
    sock.on('data', (c) => {
      req += c.toString('latin1');
      if (req.includes('\r\n\r\n')) handler(sock, req);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as net.AddressInfo).port,
    conns: () => conns,
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        s.close(() => r());
      }),
  };
}

function go(port: number, o: { signal?: AbortSignal; headersTimeoutMs?: number; bodyTimeoutMs?: number; readBytes?: number } = {}) {
  const slots = new Slots(1);
  let released = 0;
  const p = slots.acquire(new AbortController().signal).then(() =>
    exchange(
      { host: '127.0.0.1', port, authority: `127.0.0.1:${port}`, path: '/x', headers: { accept: '*/*' }, signal: o.signal ?? new AbortController().signal, headersTimeoutMs: o.headersTimeoutMs ?? 2000, bodyTimeoutMs: o.bodyTimeoutMs ?? 2000, readBytes: o.readBytes },
      () => {
        released++;
        slots.release();
      },
    ),
  );
  return { p, released: () => released, slots };
}

function drain(r: StreamResponse, hold?: (b: Buffer, release: () => void) => boolean): Promise<Buffer> {
  const out: Buffer[] = [];
  return new Promise((resolve, reject) =>
    r.read({
      data: (b) => {
        out.push(Buffer.from(b));
        return hold ? hold(b, () => r.resume()) : true;
      },
      end: () => resolve(Buffer.concat(out)),
      error: reject,
    }),
  );
}

describe('exchange (one upstream GET on its own connection)', () => {
  it('sends Connection: close with our headers; chunked body from a real http server; slot released once', async () => {
    const payload = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    let seen: http.IncomingHttpHeaders = {};
    const s = http.createServer((q, res) => {
      seen = q.headers;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < payload.length; i += 100_000) res.write(payload.subarray(i, i + 100_000));
      res.end();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    const x = go(port, { readBytes: 64 * 1024 });
    const r = await x.p;
    assert.equal(r.status, 200);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.ok((await drain(r)).equals(payload));
    assert.equal(seen.connection, 'close');
    assert.equal(seen.accept, '*/*');
    assert.equal(x.released(), 1);
    assert.equal(x.slots.inUse, 0);
    s.close();
  });

  it('a slice held by the consumer (data() → false) is not overwritten until resume()', async () => {
    const payload = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 13 + (i >> 16)) & 0xff;
    const srv = await server((sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      for (let i = 0; i < payload.length; i += 50_000) sock.write(payload.subarray(i, i + 50_000));
    });
    const x = go(srv.port, { readBytes: 128 * 1024 });
    const r = await x.p;
    const views: Array<{ view: Buffer; copy: Buffer }> = [];
    const got = await drain(r, (b, release) => {
      const held = { view: b, copy: Buffer.from(b) };
      views.push(held);
      // a slow client: let a few ms pass, check the view, then release
      setTimeout(() => {
        assert.ok(held.view.equals(held.copy), 'held slice intact');
        release();
      }, 2);
      return false;
    });
    assert.ok(got.equals(payload));
    assert.ok(views.length > 2);
    assert.equal(x.released(), 1);
    await srv.close();
  });

  it('with a pool: the last slice a consumer holds survives later exchanges (kept connection or recycled read buffer) until resume()', async () => {
    for (const closing of [false, true]) {
      let n = 0;
      let firstBody: (() => void) | undefined;
      const srv = await server((sock) => {
        const body = Buffer.alloc(3000, ++n); // each response its own byte
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${closing ? 'Connection: close\r\n' : ''}\r\n`);
        const rest = () => (closing ? sock.end(body) : sock.write(body));
        if (n === 1) firstBody = rest; // the first body only once the consumer reads: it lands in the read buffer, not in a copy
        else rest();
      });
      const pool = new ConnectionPool({ host: '127.0.0.1', port: srv.port }, 4, 64 * 1024);
      try {
      const get = () =>
        exchange({ host: '127.0.0.1', port: srv.port, authority: 'x', path: '/x', headers: {}, signal: new AbortController().signal, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, readBytes: 64 * 1024, pool }, () => {});
      const first = await get();
      let held: Buffer | undefined;
      const firstEnded = new Promise<void>((resolve) => first.read({ data: (b) => ((held = b), false), end: () => resolve(), error: () => resolve() }));
      firstBody!();
      await firstEnded;
      const copy = Buffer.from(held!);
      for (let i = 0; i < 3; i++) {
        const r = await get();
        assert.ok((await drain(r)).equals(Buffer.alloc(3000, i + 2)));
      }
      assert.ok(held!.equals(copy), `held slice intact (${closing ? 'Connection: close' : 'kept alive'})`);
      first.resume();
      // once let go, the next exchange may use what the first one had
      assert.ok((await drain(await get())).equals(Buffer.alloc(3000, 5)));
      assert.equal(srv.conns(), closing ? 5 : 2);
      } finally {
        pool.close();
        await srv.close();
      }
    }
  });

  it('a body ended by the connection (as Orthanc sends it) completes while the consumer holds slices (undici#5360 crashed here)', async () => {
    const payload = Buffer.alloc(1024 * 1024 + 3, 0x5a);
    const srv = await server((sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n');
      sock.end(payload); // FIN right behind the body
    });
    const x = go(srv.port, { readBytes: 64 * 1024 });
    const r = await x.p;
    const got = await drain(r, (_b, release) => {
      setTimeout(release, 3);
      return false;
    });
    assert.ok(got.equals(payload));
    assert.equal(x.released(), 1);
    await srv.close();
  });

  it('no head within headersTimeoutMs → UpstreamTimeoutError; stalled body → error after bodyTimeoutMs; slot released', async () => {
    const silent = await server(() => {});
    const t0 = Date.now();
    const a = go(silent.port, { headersTimeoutMs: 150 });
    await assert.rejects(a.p, (e: Error) => e.name === 'TimeoutError');
    assert.ok(Date.now() - t0 < 1500);
    assert.equal(a.released(), 1);
    await silent.close();

    const stall = await server((sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const b = go(stall.port, { bodyTimeoutMs: 150 });
    await assert.rejects(drain(await b.p), (e: Error & { code?: string }) => e.code === 'UPSTREAM_BODY_TIMEOUT');
    assert.equal(b.released(), 1);
    await stall.close();
  });

  it('abort before the head rejects with AbortError; destroy() during the body closes the upstream connection', async () => {
    const silent = await server(() => {});
    const ac = new AbortController();
    const a = go(silent.port, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(a.p, (e: Error) => e.name === 'AbortError');
    assert.equal(a.released(), 1);
    await silent.close();

    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    const endless = await server((sock) => {
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const t = setInterval(() => sock.write('3\r\nabc\r\n'), 5);
      sock.on('close', () => {
        clearInterval(t);
        closed();
      });
    });
    const b = go(endless.port);
    const r = await b.p;
    r.read({ data: () => true, end: () => assert.fail('no end'), error: () => assert.fail('no error after destroy') });
    await new Promise((x) => setTimeout(x, 30));
    r.destroy();
    await gone;
    assert.equal(b.released(), 1);
    await endless.close();
  });

  it('connection refused rejects before the head; a truncated body is an error', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const a = go(port);
    await assert.rejects(a.p, (e: Error & { code?: string }) => e.code === 'ECONNREFUSED');
    assert.equal(a.released(), 1);

    const cut = await server((sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const b = go(cut.port);
    await assert.rejects(drain(await b.p), /truncated/);
    assert.equal(b.released(), 1);
    await cut.close();
  });

  it('Slots: waiters queue in order, an aborted waiter leaves the queue', async () => {
    const s = new Slots(1);
    await s.acquire(new AbortController().signal);
    const order: number[] = [];
    const ac = new AbortController();
    const w1 = s.acquire(ac.signal).then(() => order.push(1));
    const w2 = s.acquire(new AbortController().signal).then(() => order.push(2));
    ac.abort();
    await assert.rejects(w1, (e: Error) => e.name === 'AbortError');
    s.release();
    await w2;
    assert.deepEqual(order, [2]);
    assert.equal(s.inUse, 1);
  });
});
