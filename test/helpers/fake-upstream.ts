/**
 * A fake DICOMweb upstream that is really HTTP (real sockets; used only for fault injection): http.createServer on port 0, serving
 * multipart DICOM bodies built here, and misbehaving on cue (slow headers, failure after N bytes,
 * any status). It records every request (method, url, headers) and counts requests whose
 * connection closed before the response finished (client abort propagated upstream).
 * With `opts.tls` (key and certificate) it is an https: server (https.createServer).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** TLS only: the SNI server name the client sent (false: none) */
  servername?: string | false;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface FakeUpstream {
  /** DICOMweb base URL, e.g. http://127.0.0.1:port/dicom-web */
  url: string;
  origin: string;
  requests: RecordedRequest[];
  /** responses whose connection closed before they finished */
  aborted: number;
  onAbort: (() => void) | undefined;
  handler: Handler;
  close: () => Promise<void>;
}

export async function startFakeUpstream(handler: Handler = (_q, s) => s.writeHead(404).end(), opts: { tls?: { key: Buffer; cert: Buffer } } = {}): Promise<FakeUpstream> {
  const fake = { requests: [] as RecordedRequest[], aborted: 0, onAbort: undefined as (() => void) | undefined, handler } as FakeUpstream;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const servername = opts.tls ? (req.socket as import('node:tls').TLSSocket & { servername: string | false }).servername : undefined;
    fake.requests.push({ method: req.method!, url: req.url!, headers: req.headers, ...(opts.tls ? { servername } : {}) });
    res.on('close', () => {
      if (!res.writableFinished) {
        fake.aborted++;
        fake.onAbort?.();
      }
    });
    fake.handler(req, res);
  };
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : http.createServer(onRequest);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  fake.origin = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  fake.url = `${fake.origin}/dicom-web`;
  fake.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}

/** Minimal PS3.10 file (Explicit VR LE) with the given SOP Instance UID and `payload` bytes of pixel data. */
export function dicomPart(sop: string, payload = 64, opts: { implicit?: boolean; fill?: number } = {}): Buffer {
  const el = (g: number, e: number, vr: string, value: Buffer, implicit = false): Buffer => {
    const v = value.length % 2 ? Buffer.concat([value, Buffer.from(vr === 'UI' || vr === 'OB' ? [0] : [0x20])]) : value;
    if (implicit) {
      const h = Buffer.alloc(8);
      h.writeUInt16LE(g, 0);
      h.writeUInt16LE(e, 2);
      h.writeUInt32LE(v.length, 4);
      return Buffer.concat([h, v]);
    }
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(g, 0);
    h.writeUInt16LE(e, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(v.length, 8);
    else h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const ts = opts.implicit ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1';
  const metaBody = Buffer.concat([
    el(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    el(0x0002, 0x0002, 'UI', Buffer.from('1.2.840.10008.5.1.4.1.1.7')),
    el(0x0002, 0x0003, 'UI', Buffer.from(sop)),
    el(0x0002, 0x0010, 'UI', Buffer.from(ts)),
  ]);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(metaBody.length);
  const meta = Buffer.concat([el(0x0002, 0x0000, 'UL', gl), metaBody]);
  const pixels = Buffer.alloc(payload, opts.fill ?? 7);
  const ds = Buffer.concat([
    el(0x0008, 0x0016, 'UI', Buffer.from('1.2.840.10008.5.1.4.1.1.7'), opts.implicit),
    el(0x0008, 0x0018, 'UI', Buffer.from(sop), opts.implicit),
    el(0x7fe0, 0x0010, 'OB', pixels, opts.implicit),
  ]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, ds]);
}

export function multipartBody(parts: Buffer[], boundary: string, type = 'application/dicom'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** Split a multipart body into its part bodies (test-side parser, whole body in memory). */
export function splitMultipart(body: Buffer, contentType: string): Array<{ headers: string; body: Buffer }> {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`\r\n--${m[1]}`);
  const buf = Buffer.concat([Buffer.from('\r\n'), body]);
  const out: Array<{ headers: string; body: Buffer }> = [];
  let pos = buf.indexOf(delim);
  if (pos < 0) throw new Error('no delimiter');
  for (;;) {
    pos += delim.length;
    if (buf.subarray(pos, pos + 2).toString() === '--') return out;
    const eol = buf.indexOf('\r\n', pos);
    const hend = buf.indexOf('\r\n\r\n', eol);
    const headers = buf.subarray(eol + 2, hend).toString('latin1');
    const next = buf.indexOf(delim, hend + 4);
    if (next < 0) throw new Error('unterminated part');
    out.push({ headers, body: buf.subarray(hend + 4, next) });
    pos = next;
  }
}
