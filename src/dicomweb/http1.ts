/**
 * The streaming retrieval path's own HTTP/1.1 client, for plain http: and https: upstreams alike
 * (src/dicomweb/upstream.ts; undici only serves the buffered requests there).
 *
 * Why (bench/proxy-floor.ts, bench/results-wado.md): on a loopback or LAN hop the cost of a Node
 * proxy per GB is dominated by how the upstream socket is read. Node's default reads allocate a
 * fresh 64 KiB buffer each time (page faults, cache misses, GC of external memory), and undici
 * copies every byte once more into its WASM parser. Reading into one reused 1 MiB buffer
 * (net.Socket `onread`) and writing slices of it to the client by reference costs about a third
 * of the CPU. The price is a contract: a body slice is only valid until the next read, so the
 * consumer either is done with it when its callback returns (returns true) or returns false and
 * calls resume() once every write that references it has been flushed — no read happens in
 * between. Nothing is buffered beyond the one read buffer.
 *
 * https: (ExchangeOptions.tls) runs the same exchange over tls.connect. A TLS socket cannot read
 * into a caller's buffer (`onread` is plain TCP only), so its decrypted chunks arrive as 'data'
 * events; they are freshly allocated, but the same contract applies: data() returning false
 * pauses the socket (no further 'data', and a FIN that arrives meanwhile is only seen after
 * resume() — the case undici 7 crashes on, nodejs/undici#5360).
 *
 * Connections are kept alive (ConnectionPool, decisions.md D130): viewers fetch frame by frame,
 * and a TCP + TLS handshake per few-kilobyte frame costs more than the frame. A connection goes
 * back to the pool only after a response that ended exactly at its framing (Content-Length or
 * chunked; never a close-delimited body) and once the consumer has let go of the last slice of
 * the read buffer. An upstream may close an idle connection at any moment (Orthanc after 1 s):
 * a GET that fails on a reused connection before any response byte is retried once on a new
 * connection (RFC 9110 §9.2.2: GET is idempotent; RFC 9112 §9.3.1 retrying after a close).
 * Without a pool (tests, tools) an exchange sends Connection: close and uses its own connection.
 */
import net from 'node:net';
import tls from 'node:tls';

export type Headers = Record<string, string | string[] | undefined>;

export class HttpParseError extends Error {
  readonly code = 'GW_UPSTREAM_BAD_HTTP';
}

export interface ReaderCallbacks {
  head: (status: number, headers: Headers) => void;
  /** A view into the fed chunk (or a copy made while the head was parsed) */
  body: (b: Buffer) => void;
  end: () => void;
}

type RState = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'close' | 'done';

const MAX_HEAD = 64 * 1024;
const MAX_LINE = 4 * 1024;

/**
 * HTTP/1.x response parser over a byte stream (RFC 9112): status line and header fields, then the
 * body framed by Transfer-Encoding: chunked, Content-Length or the end of the connection. Body
 * bytes are handed on as views of the fed chunk (no copy); only the head and chunk-size lines
 * split across chunks are copied. Throws HttpParseError on anything malformed.
 */
export class ResponseReader {
  private state: RState = 'head';
  private head: Buffer | undefined;
  private line: Buffer | undefined;
  private remaining = 0;
  status = 0;
  headers: Headers = {};
  /** The connection may carry another exchange after this response (HTTP/1.1, no Connection: close, framed body) */
  persistent = false;
  /** Bytes arrived after the end of the response (nothing was asked for: the connection is not reused) */
  trailing = false;

  constructor(private readonly cb: ReaderCallbacks) {}

  get done(): boolean {
    return this.state === 'done';
  }

  feed(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case 'head': {
          const whole: Buffer = this.head ? Buffer.concat([this.head, buf.subarray(pos)]) : buf.subarray(pos);
          const end = whole.indexOf('\r\n\r\n', 0, 'latin1');
          if (end < 0) {
            if (whole.length > MAX_HEAD) throw new HttpParseError('upstream response head too large');
            this.head = Buffer.from(whole);
            return;
          }
          this.head = undefined;
          const informational = this.parseHead(whole.toString('latin1', 0, end));
          // the rest of this chunk continues from `whole` (a copy only when the head was split)
          buf = whole;
          pos = end + 4;
          if (informational) break; // 1xx: another head follows
          this.cb.head(this.status, this.headers);
          if ((this.state as RState) === 'done') this.cb.end(); // 204/304/Content-Length: 0
          break;
        }
        case 'length':
          pos = this.deliver(buf, pos);
          if (this.remaining === 0) this.finish();
          break;
        case 'close':
          this.cb.body(pos === 0 ? buf : buf.subarray(pos));
          return;
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailers': {
          const eol = buf.indexOf(10, pos); // LF; the line must end in CRLF
          if (eol < 0) {
            this.line = this.line ? Buffer.concat([this.line, buf.subarray(pos)]) : Buffer.from(buf.subarray(pos));
            if (this.line.length > MAX_LINE) throw new HttpParseError('upstream chunk line too long');
            return;
          }
          const line = this.line ? Buffer.concat([this.line, buf.subarray(pos, eol + 1)]) : buf.subarray(pos, eol + 1);
          this.line = undefined;
          pos = eol + 1;
          if (line.length < 2 || line[line.length - 2] !== 13) throw new HttpParseError('upstream chunk line not ended by CRLF');
          const text = line.toString('latin1', 0, line.length - 2);
          if (this.state === 'chunk-crlf') {
            if (text !== '') throw new HttpParseError('upstream chunk data longer than its size');
            this.state = 'chunk-size';
          } else if (this.state === 'trailers') {
            if (text === '') this.finish();
          } else {
            const m = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(text);
            if (!m) throw new HttpParseError('malformed upstream chunk size');
            this.remaining = parseInt(m[1]!, 16);
            this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
          }
          break;
        }
        case 'chunk-data': {
          pos = this.deliver(buf, pos);
          if (this.remaining === 0) this.state = 'chunk-crlf';
          break;
        }
        case 'done':
          this.trailing = true;
          return; // bytes after the response are ignored; the connection is not reused
      }
    }
  }

  /** The connection ended: completes a close-delimited body, else the response was truncated. */
  eof(): void {
    if (this.state === 'done') return;
    if (this.state === 'close') return this.finish();
    throw new HttpParseError(this.state === 'head' ? 'upstream closed before its response head' : 'upstream response body truncated');
  }

  private finish(): void {
    this.state = 'done';
    this.cb.end();
  }

  /** Parses the head; returns true for a 1xx interim response (skipped). */
  /** Hand on up to `remaining` body bytes from pos (the whole chunk by reference when it fits); returns the new pos. */
  private deliver(buf: Buffer, pos: number): number {
    const n = Math.min(this.remaining, buf.length - pos);
    this.cb.body(pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n));
    this.remaining -= n;
    return pos + n;
  }

  private parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (!m) throw new HttpParseError('malformed upstream status line');
    const status = Number(m[2]);
    const headers: Headers = {};
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      const c = l.indexOf(':');
      if (c <= 0 || /[\s]/.test(l[0]!) || /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(l.slice(0, c))) throw new HttpParseError('malformed upstream header field');
      const name = l.slice(0, c).toLowerCase();
      const value = l.slice(c + 1).trim();
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    if (status >= 100 && status < 200) return true;
    this.status = status;
    this.headers = headers;
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (status === 204 || status === 304) {
      this.state = 'done';
    } else if (te !== undefined) {
      const codings = (Array.isArray(te) ? te.join(',') : te).split(',').map((s) => s.trim().toLowerCase());
      this.state = codings[codings.length - 1] === 'chunked' ? 'chunk-size' : 'close';
    } else if (cl !== undefined) {
      const values = new Set((Array.isArray(cl) ? cl.join(',') : cl).split(',').map((s) => s.trim()));
      const v = [...values][0]!;
      if (values.size !== 1 || !/^\d{1,15}$/.test(v)) throw new HttpParseError('malformed upstream Content-Length');
      this.remaining = Number(v);
      this.state = this.remaining === 0 ? 'done' : 'length';
    } else {
      this.state = 'close';
    }
    const conn = headers['connection'];
    this.persistent = m[1] === '1' && this.state !== 'close' && !/(^|,)\s*close\s*(,|$)/i.test(Array.isArray(conn) ? conn.join(',') : (conn ?? ''));
    return false;
  }
}

export interface BodyHandler {
  /** Return false to keep the slice: no further read until resume(). */
  data: (b: Buffer) => boolean;
  end: () => void;
  error: (err: Error) => void;
}

/** A response whose head has arrived; the body flows once read() is called. */
export interface StreamResponse {
  status: number;
  headers: Headers;
  read: (h: BodyHandler) => void;
  /** Continue reading after data() returned false (or after pause()). */
  resume: () => void;
  pause: () => void;
  /** Abort the exchange (idempotent); a started body reports no error after this. */
  destroy: () => void;
}

export class UpstreamTimeoutError extends Error {
  constructor(
    message: string,
    readonly code: 'UPSTREAM_HEADERS_TIMEOUT' | 'UPSTREAM_BODY_TIMEOUT',
  ) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** Counting semaphore: at most `max` exchanges in flight per upstream. */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortError());
    if (this.used < this.max) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', onAbort);
        this.used++;
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(go);
    });
  }

  release(): void {
    this.used--;
    const next = this.waiting.shift();
    if (next) next();
  }
}

function abortError(): Error {
  const e = new Error('request aborted');
  e.name = 'AbortError';
  return e;
}

/** Where an exchange connects; `tls` set for https: */
export interface Target {
  host: string;
  port: number;
  /**
   * Speak TLS (https:): options for tls.connect (servername for SNI and certificate checks, ca,
   * rejectUnauthorized, cert/key); host and port are taken from above. Connect, handshake and
   * head together stay within headersTimeoutMs.
   */
  tls?: tls.ConnectionOptions;
}

export interface ExchangeOptions extends Target {
  /** Host header value */
  authority: string;
  path: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Read buffer size (the largest slice handed to the body handler; plain TCP only) */
  readBytes?: number;
  /** Keep-alive connections to the same target; absent: Connection: close on a connection of its own */
  pool?: ConnectionPool;
}

export const READ_BYTES = 1024 * 1024;
/** How long an idle connection is kept when the upstream names no Keep-Alive timeout */
const IDLE_MS = 4000;
/** Read buffers kept for new connections per upstream */
const FREE_BUFFERS = 4;
/** Kept this much under the upstream's Keep-Alive timeout, so a connection it is about to close is not picked */
const IDLE_MARGIN_MS = 300;

/** What a connection's events go to: the exchange that holds it, or the pool while it is idle. */
interface ConnOwner {
  chunk: (b: Buffer) => boolean;
  connected: () => void;
  error: (err: Error) => void;
  eof: () => void;
  closed: () => void;
}

/**
 * One upstream connection. Plain TCP reads into the connection's own reused buffer (`onread`),
 * TLS delivers decrypted chunks as 'data' events; either way every event goes to the current owner.
 */
export class Conn {
  owner: ConnOwner | undefined;
  /** Has served an exchange: a failure before any response byte may be a close while it was idle */
  reused = false;
  idleTimer: NodeJS.Timeout | undefined;
  readonly sock: net.Socket;
  /** Plain TCP: the buffer every read goes into */
  readonly buf: Buffer | undefined;

  constructor(t: Target, readBytes: number, session?: Buffer, onSession?: (s: Buffer) => void, buf?: Buffer) {
    if (t.tls) {
      const sock = tls.connect({ ...t.tls, host: t.host, port: t.port, session });
      if (onSession) sock.on('session', onSession); // TLS 1.3 tickets arrive after the handshake
      sock.on('data', (chunk: Buffer) => this.owner?.chunk(chunk)); // the owner pauses the socket itself to keep a chunk
      sock.once('secureConnect', () => this.owner?.connected());
      this.sock = sock;
    } else {
      const callback = (n: number, b: Buffer) => this.owner?.chunk(b.subarray(0, n)) ?? false;
      this.buf = buf && buf.length === readBytes ? buf : Buffer.allocUnsafeSlow(readBytes);
      this.sock = net.connect({ host: t.host, port: t.port, onread: { buffer: this.buf, callback } });
      this.sock.once('connect', () => this.owner?.connected());
    }
    this.sock.setNoDelay(true);
    this.sock.on('error', (err) => this.owner?.error(err));
    this.sock.on('end', () => this.owner?.eof());
    this.sock.on('close', () => this.owner?.closed());
  }
}

/**
 * Idle keep-alive connections to one upstream (at most maxIdle, most recently used first) and the
 * last TLS session, so a new TLS connection resumes instead of a full handshake (RFC 8446 §2.2).
 */
export class ConnectionPool {
  private readonly idle: Conn[] = [];
  /** Read buffers of ended connections that nothing references any more (a new one each time made work for the GC) */
  private readonly free: Buffer[] = [];
  private session: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly target: Target,
    private readonly maxIdle: number,
    private readonly readBytes = READ_BYTES,
  ) {}

  /** An idle connection that is still open, else a new one. */
  take(): Conn {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      clearTimeout(c.idleTimer);
      if (!c.sock.destroyed && c.sock.readyState === 'open') {
        c.sock.ref();
        return c;
      }
      c.sock.destroy();
    }
    return this.open();
  }

  open(): Conn {
    return new Conn(this.target, this.readBytes, this.session, (s) => (this.session = s), this.free.pop());
  }

  /** A read buffer no slice of which is referenced any more, for the next new connection. */
  recycle(buf: Buffer): void {
    if (!this.closed && this.free.length < FREE_BUFFERS) this.free.push(buf);
  }

  /** Keep a connection whose response ended at its framing, for idleMs at most. */
  park(c: Conn, idleMs: number): void {
    if (this.closed || idleMs <= 0 || this.idle.length >= this.maxIdle || c.sock.destroyed) {
      c.sock.destroy();
      return;
    }
    const drop = () => {
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
      clearTimeout(c.idleTimer);
      c.sock.destroy();
    };
    // anything from an idle connection (bytes nobody asked for, end, error) ends it
    c.owner = { chunk: () => (drop(), false), connected: () => {}, error: drop, eof: drop, closed: drop };
    c.reused = true;
    c.idleTimer = setTimeout(drop, idleMs);
    c.idleTimer.unref();
    this.idle.push(c);
    c.sock.unref(); // an idle connection never keeps the process alive
    c.sock.resume(); // keeps reading while idle: the upstream's close is seen at once
  }

  close(): void {
    this.closed = true;
    this.free.length = 0;
    for (const c of this.idle.splice(0)) {
      clearTimeout(c.idleTimer);
      c.sock.destroy();
    }
  }
}

/** How long a connection may idle after this response: under the upstream's Keep-Alive timeout (RFC 9112 §9.3, the de-facto Keep-Alive header). */
function idleMsOf(headers: Headers): number {
  const ka = headers['keep-alive'];
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,6})/i.exec(Array.isArray(ka) ? ka.join(',') : (ka ?? ''));
  return m ? Math.min(IDLE_MS, Number(m[1]) * 1000 - IDLE_MARGIN_MS) : IDLE_MS;
}

/**
 * One GET. Resolves at the response head; rejects before it with the socket error, an
 * UpstreamTimeoutError (connect + head within headersTimeoutMs), an AbortError or an
 * HttpParseError. Caller holds a slot from Slots for the exchange; `release` runs exactly once
 * when the exchange is over (done, failed or destroyed). With a pool, a failure on a reused
 * connection before any response byte is retried once on a new connection.
 */
export function exchange(o: ExchangeOptions, release: () => void): Promise<StreamResponse> {
  const head = requestHead(o);
  return new Promise<StreamResponse>((resolve, reject) => {
    const attempt = (first: boolean) => new Exchange(o, head, release, resolve, reject, first ? () => attempt(false) : undefined).start();
    attempt(true);
  });
}

/** The request line and headers; CR/LF inside a field would split the request. */
function requestHead(o: ExchangeOptions): string {
  for (const [k, v] of Object.entries(o.headers)) if (/[\r\n]/.test(k + v)) throw new Error('header field with CR/LF');
  let head = `GET ${o.path} HTTP/1.1\r\nHost: ${o.authority}\r\n${o.pool ? '' : 'Connection: close\r\n'}`;
  for (const [k, v] of Object.entries(o.headers)) head += `${k}: ${v}\r\n`;
  return head + '\r\n';
}

/**
 * The state of one exchange. Reading follows the consumer: after the head nothing is read until
 * read(); a body handler returning false (or pause()) stops reading until resume(), and while
 * reading is stopped the body timer is off (a slow client is not a stalled upstream).
 */
class Exchange {
  private handler: BodyHandler | undefined;
  /** Body bytes (views of the read buffer; reading is stopped meanwhile) that came with the head, before read() */
  private pending: Buffer[] | undefined;
  private failure: Error | undefined;
  private ended = false;
  /** Exchange finished or failed: slot released, connection destroyed or kept */
  private over = false;
  private headSeen = false;
  /** Any response byte arrived (a failure before that on a reused connection is retried) */
  private gotBytes = false;
  /** Response ended cleanly on a keep-alive connection: park it once the consumer lets go of the read buffer */
  private keepConn = false;
  /** Response ended on a connection that is not kept: its read buffer goes back to the pool once the consumer lets go */
  private recycleBuf = false;
  /** data() returned false / pause(): no read until resume() */
  private consumerPaused = false;
  private inRead = false;
  private wantPause = false;
  private bodyTimer: NodeJS.Timeout | undefined;
  /** performance.now() when the body last made progress (armBody) */
  private bodyActiveAt = 0;
  private headTimer: NodeJS.Timeout | undefined;
  private conn!: Conn;
  private readonly reader: ResponseReader;
  private readonly onAbort = () => this.fail(abortError());
  readonly response: StreamResponse;

  constructor(
    private readonly o: ExchangeOptions,
    private readonly head: string,
    private readonly release: () => void,
    private readonly resolve: (r: StreamResponse) => void,
    private readonly reject: (e: Error) => void,
    /** Set on a first attempt: called instead of reject when a reused connection turned out closed */
    private retry: (() => void) | undefined,
  ) {
    this.reader = new ResponseReader({ head: () => this.onHead(), body: (b) => this.onBody(b), end: () => this.onEnd() });
    this.response = this.consumerSide();
  }

  start(): void {
    const pool = this.o.pool;
    // a retry takes a new connection: the next idle one may have been closed just the same
    this.conn = pool ? (this.retry ? pool.take() : pool.open()) : new Conn(this.o, this.o.readBytes ?? READ_BYTES);
    if (!this.conn.reused) this.retry = undefined;
    this.conn.owner = {
      chunk: (b) => this.onChunk(b),
      connected: () => this.conn.sock.write(this.head),
      error: (err) => this.fail(err),
      eof: () => this.onEof(),
      // after a close-delimited body the close is expected: no error object (and stack) made for it
      closed: () => {
        if (!this.over) this.fail(new HttpParseError('upstream connection closed'));
      },
    };
    if (this.conn.reused) this.conn.sock.write(this.head);
    this.headTimer = setTimeout(() => this.fail(new UpstreamTimeoutError('upstream did not answer in time', 'UPSTREAM_HEADERS_TIMEOUT')), this.o.headersTimeoutMs);
    this.o.signal.addEventListener('abort', this.onAbort, { once: true });
    if (this.o.signal.aborted) this.onAbort();
  }

  /** Ends the exchange once; `retrying`: the slot stays with the next attempt. */
  private finishExchange(retrying = false): boolean {
    if (this.over) return false;
    this.over = true;
    clearTimeout(this.headTimer);
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.o.signal.removeEventListener('abort', this.onAbort);
    if (!this.keepConn) this.conn.sock.destroy();
    if (!retrying) this.release();
    return true;
  }

  private fail(err: Error): void {
    if (this.over) return;
    const retry = this.retry && !this.gotBytes && !(err instanceof UpstreamTimeoutError) && err.name !== 'AbortError' ? this.retry : undefined;
    this.keepConn = false;
    this.finishExchange(!!retry);
    if (retry) return retry();
    if (!this.headSeen) this.reject(err);
    else if (this.handler) this.handler.error(err);
    else this.pending = undefined; // reported when read() is called
    this.failure = err;
  }

  private onHead(): void {
    this.headSeen = true;
    clearTimeout(this.headTimer);
    this.pending = [];
    this.wantPause = true; // nothing more is read until the consumer calls read()
    this.resolve(this.response);
  }

  private onBody(b: Buffer): void {
    if (this.handler) {
      if (!this.handler.data(b)) this.wantPause = true;
      return;
    }
    // Before read(): kept by reference and reading stops, so the read buffer is not refilled
    // under the slice (a copy cost a body-sized allocation per small response).
    this.pending!.push(b);
    this.wantPause = true;
  }

  private onEnd(): void {
    this.ended = true;
    this.keepConn = !!this.o.pool && this.reader.persistent;
    this.recycleBuf = !this.keepConn && !!this.o.pool && !!this.conn.buf;
    this.finishExchange();
    this.handler?.end();
  }

  private onEof(): void {
    if (this.over) return;
    try {
      this.reader.eof();
    } catch (err) {
      this.fail(err as Error);
    }
    this.settleBuffer();
  }

  /** Hand the read buffer back once nothing the consumer still writes can reference it. */
  private settleBuffer(): void {
    if (!this.recycleBuf || this.wantPause || this.consumerPaused || this.inRead) return;
    this.recycleBuf = false;
    this.o.pool!.recycle(this.conn.buf!);
  }

  /**
   * The body made progress (or reading goes on): the stall timer counts from now. The time is
   * noted and the running timer, when it fires, waits out the rest — moving a timer on every read
   * (refresh) cost more than the read's own work.
   */
  private armBody(): void {
    if (this.over || this.o.bodyTimeoutMs <= 0) return;
    this.bodyActiveAt = performance.now();
    this.bodyTimer ??= setTimeout(this.onBodyTimer, this.o.bodyTimeoutMs);
  }

  private readonly onBodyTimer = (): void => {
    const rest = this.bodyActiveAt + this.o.bodyTimeoutMs - performance.now();
    if (rest >= 1) this.bodyTimer = setTimeout(this.onBodyTimer, rest);
    else this.fail(new UpstreamTimeoutError('upstream body stalled', 'UPSTREAM_BODY_TIMEOUT'));
  };

  private stopReading(): void {
    this.consumerPaused = true;
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.bodyTimer = undefined;
    this.conn.sock.pause();
  }

  /** One read's bytes (a view of the reused buffer, or a TLS chunk); false: reading paused. */
  private onChunk(chunk: Buffer): boolean {
    if (this.over) {
      if (this.keepConn) this.dropConn(); // bytes after the response: not reusable
      return false;
    }
    this.gotBytes = true;
    this.inRead = true;
    this.wantPause = false;
    try {
      this.reader.feed(chunk);
    } catch (err) {
      this.inRead = false;
      this.fail(err as Error);
      return false;
    }
    this.inRead = false;
    if (this.over) {
      if (this.recycleBuf && this.wantPause) this.consumerPaused = true; // the consumer holds the last slice
      this.settleBuffer();
      return this.settleConn();
    }
    if (this.headSeen && !this.ended) this.armBody();
    if (!this.wantPause) return true;
    this.stopReading();
    return false;
  }

  /** After the response's last read: park the connection now, or once the consumer lets go of the slice it kept. */
  private settleConn(): boolean {
    if (!this.keepConn) return false;
    if (this.reader.trailing) {
      this.dropConn();
      return false;
    }
    if (this.wantPause) {
      this.stopReading();
      return false;
    }
    this.parkConn();
    return true;
  }

  private parkConn(): void {
    this.keepConn = false;
    this.o.pool!.park(this.conn, idleMsOf(this.reader.headers));
  }

  private dropConn(): void {
    this.keepConn = false;
    this.conn.sock.destroy();
  }

  private resume(): void {
    if (this.keepConn && this.over && !this.inRead) return this.parkConn();
    if (this.recycleBuf && this.over && !this.inRead) {
      this.consumerPaused = false;
      this.wantPause = false;
      return this.settleBuffer();
    }
    if (this.over || !this.consumerPaused || this.inRead) {
      this.wantPause = false;
      return;
    }
    this.consumerPaused = false;
    this.armBody();
    this.conn.sock.resume();
  }

  private pause(): void {
    if (this.over) return;
    if (this.inRead) this.wantPause = true;
    else if (!this.consumerPaused) this.stopReading();
  }

  private read(h: BodyHandler): void {
    if (this.handler) throw new Error('read() twice');
    this.handler = h;
    if (this.failure) return h.error(this.failure);
    const early = this.pending ?? [];
    this.pending = undefined;
    let keep = false;
    for (const b of early) if (!h.data(b)) keep = true;
    if (this.ended) {
      // the consumer still holds an early slice: its resume() parks the connection or recycles the buffer
      if (!keep) {
        this.consumerPaused = this.wantPause = false;
        if (this.keepConn) this.parkConn();
        this.settleBuffer();
      }
      return h.end();
    }
    if (!keep) this.resume();
  }

  /** The StreamResponse the caller holds. */
  private consumerSide(): StreamResponse {
    const reader = this.reader;
    return {
      get status() {
        return reader.status;
      },
      get headers() {
        return reader.headers;
      },
      read: (h) => this.read(h),
      resume: () => this.resume(),
      pause: () => this.pause(),
      destroy: () => {
        this.recycleBuf = false; // the consumer may still be writing slices of it
        if (this.keepConn) this.dropConn();
        this.finishExchange();
      },
    };
  }
}
