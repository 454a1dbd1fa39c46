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
 * One request per connection (Connection: close): a retrieval moves megabytes to gigabytes, a TCP
 * (or TLS) handshake on top is noise, and no keep-alive state (stale sockets, pipelining) is needed.
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
          return; // bytes after the response on a Connection: close socket are ignored
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
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (!m) throw new HttpParseError('malformed upstream status line');
    const status = Number(m[1]);
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

export interface ExchangeOptions {
  host: string;
  port: number;
  /** Host header value */
  authority: string;
  path: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Read buffer size (the largest slice handed to the body handler; plain TCP only) */
  readBytes?: number;
  /**
   * Speak TLS (https:): options for tls.connect (servername for SNI and certificate checks, ca,
   * rejectUnauthorized, cert/key); host and port are taken from above. Connect, handshake and
   * head together stay within headersTimeoutMs.
   */
  tls?: tls.ConnectionOptions;
}

export const READ_BYTES = 1024 * 1024;

/**
 * One GET on its own connection. Resolves at the response head; rejects before it with the
 * socket error, an UpstreamTimeoutError (connect + head within headersTimeoutMs), an AbortError
 * or an HttpParseError. Caller holds a slot from Slots for the exchange; `release` runs exactly
 * once when the exchange is over (done, failed or destroyed).
 */
export function exchange(o: ExchangeOptions, release: () => void): Promise<StreamResponse> {
  const head = requestHead(o);
  return new Promise<StreamResponse>((resolve, reject) => new Exchange(o, release, resolve, reject).start(head));
}

/** The request line and headers; CR/LF inside a field would split the request. */
function requestHead(o: ExchangeOptions): string {
  for (const [k, v] of Object.entries(o.headers)) if (/[\r\n]/.test(k + v)) throw new Error('header field with CR/LF');
  let head = `GET ${o.path} HTTP/1.1\r\nHost: ${o.authority}\r\nConnection: close\r\n`;
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
  /** Body bytes (copies) that came with the head, before read() */
  private pending: Buffer[] | undefined;
  private failure: Error | undefined;
  private ended = false;
  /** Exchange finished or failed: slot released, socket destroyed */
  private over = false;
  private headSeen = false;
  /** data() returned false / pause(): no read until resume() */
  private consumerPaused = false;
  private inRead = false;
  private wantPause = false;
  private bodyTimer: NodeJS.Timeout | undefined;
  private headTimer: NodeJS.Timeout | undefined;
  private sock!: net.Socket;
  private readonly reader: ResponseReader;
  private readonly onAbort = () => this.fail(abortError());
  readonly response: StreamResponse;

  constructor(
    private readonly o: ExchangeOptions,
    private readonly release: () => void,
    private readonly resolve: (r: StreamResponse) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.reader = new ResponseReader({ head: () => this.onHead(), body: (b) => this.onBody(b), end: () => this.onEnd() });
    this.response = this.consumerSide();
  }

  start(head: string): void {
    this.sock = this.connect(head);
    this.sock.on('error', (err) => this.fail(err));
    this.sock.on('end', () => this.onEof());
    this.sock.on('close', () => {
      if (!this.over) this.fail(new HttpParseError('upstream connection closed'));
    });
    this.headTimer = setTimeout(() => this.fail(new UpstreamTimeoutError('upstream did not answer in time', 'UPSTREAM_HEADERS_TIMEOUT')), this.o.headersTimeoutMs);
    this.o.signal.addEventListener('abort', this.onAbort, { once: true });
    if (this.o.signal.aborted) this.onAbort();
  }

  /** TLS: decrypted chunks as 'data' events. Plain TCP: reads into one reused buffer (`onread`). */
  private connect(head: string): net.Socket {
    const o = this.o;
    if (o.tls) {
      const sock = tls.connect({ ...o.tls, host: o.host, port: o.port });
      sock.setNoDelay(true);
      sock.on('data', (chunk: Buffer) => this.onChunk(chunk)); // pauses the socket itself when the consumer keeps the chunk
      sock.once('secureConnect', () => sock.write(head));
      return sock;
    }
    const sock = net.connect({
      host: o.host,
      port: o.port,
      noDelay: true,
      onread: { buffer: Buffer.allocUnsafeSlow(o.readBytes ?? READ_BYTES), callback: (n: number, buf: Buffer) => this.onChunk(buf.subarray(0, n)) },
    });
    sock.once('connect', () => sock.write(head));
    return sock;
  }

  private finishExchange(): boolean {
    if (this.over) return false;
    this.over = true;
    clearTimeout(this.headTimer);
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.o.signal.removeEventListener('abort', this.onAbort);
    this.sock.destroy();
    this.release();
    return true;
  }

  private fail(err: Error): void {
    if (!this.finishExchange()) return;
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
    if (!this.handler) this.pending!.push(Buffer.from(b));
    else if (!this.handler.data(b)) this.wantPause = true;
  }

  private onEnd(): void {
    this.ended = true;
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
  }

  private armBody(): void {
    if (this.over || this.o.bodyTimeoutMs <= 0) return;
    if (this.bodyTimer) this.bodyTimer.refresh();
    else this.bodyTimer = setTimeout(() => this.fail(new UpstreamTimeoutError('upstream body stalled', 'UPSTREAM_BODY_TIMEOUT')), this.o.bodyTimeoutMs);
  }

  private stopReading(): void {
    this.consumerPaused = true;
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.bodyTimer = undefined;
    this.sock.pause();
  }

  /** One read's bytes (a view of the reused buffer, or a TLS chunk); false: reading paused. */
  private onChunk(chunk: Buffer): boolean {
    if (this.over) return false;
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
    if (this.over) return false;
    if (this.headSeen && !this.ended) this.armBody();
    if (!this.wantPause) return true;
    this.stopReading();
    return false;
  }

  private resume(): void {
    if (this.over || !this.consumerPaused || this.inRead) {
      this.wantPause = false;
      return;
    }
    this.consumerPaused = false;
    this.armBody();
    this.sock.resume();
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
    if (this.ended) return h.end();
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
        this.finishExchange();
      },
    };
  }
}
