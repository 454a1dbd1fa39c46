/**
 * Streaming multipart/related filter for WADO-RS study/series retrieval (SUPPL §X.1.1.3: the
 * source may return only the instances published in the manifest). Parts are parsed as they
 * stream (RFC 2046 §5.1.1 delimiters), the start of each part body is peeked for its SOP Instance
 * UID (src/dicom/peek.ts), and only parts whose UID passes `keep` are written — re-framed with
 * `outBoundary`, never buffered beyond the peek window. A body that ends without its close
 * delimiter is an error (the caller destroys the response: a truncated multipart must not look
 * complete).
 */
import { peekSopInstanceUid } from '../dicom/peek.js';
import { parseContentType } from '../http/media-type.js';

export interface MultipartFilterOptions {
  /** Boundary of the incoming body */
  boundary: string;
  /** Boundary to write; the same as `boundary` when the upstream Content-Type is passed through */
  outBoundary: string;
  keep: (sopInstanceUid: string) => boolean;
  /** Max bytes of a part held while looking for its SOP Instance UID */
  maxPeekBytes?: number;
  maxHeaderBytes?: number;
  /** Parts already written to the same output by a previous filter (concatenated responses) */
  partsBefore?: number;
  /** Write the close delimiter at the end (false when another filter continues the body) */
  writeClose?: boolean;
  /**
   * Emit PART_HEAD (this exact Buffer object) instead of each part's delimiter line, so a caller
   * that concatenates several parsers' output can frame parts when it writes them.
   */
  headSentinel?: boolean;
}

/** Sentinel emitted in place of a delimiter line when `headSentinel` is set (compare by identity). */
export const PART_HEAD: Buffer = Buffer.alloc(0);

export class MultipartError extends Error {}

type State = 'preamble' | 'afterDelim' | 'headers' | 'body' | 'done';

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/**
 * The parser/filter core with a plain output callback (no stream machinery per chunk): the WADO
 * proxy feeds it from the upstream's 'data' events and writes `out` straight to the response.
 */
export class MultipartParser {
  private readonly out: (b: Buffer) => void;
  private readonly delim: Buffer;
  private readonly outBoundary: string;
  private readonly keep: (uid: string) => boolean;
  private readonly maxPeek: number;
  private readonly maxHeader: number;
  private readonly writeClose: boolean;
  private readonly headSentinel: boolean;
  private state: State = 'preamble';
  // the stream is read as if prefixed by CRLF so the first delimiter needs no special case
  private carry: Buffer = CRLF;
  private rawHeaders: Buffer = Buffer.alloc(0);
  private decided: boolean | null = null;
  private peek: Buffer[] = [];
  private peekLen = 0;
  /** Bytes of the current part's body still to come by its Content-Length; -1: delimited by the boundary scan */
  private counted = -1;
  /** Parts written so far (including partsBefore) */
  partsOut: number;
  partsIn = 0;
  partsDropped = 0;

  constructor(o: MultipartFilterOptions, out: (b: Buffer) => void) {
    this.out = out;
    this.delim = Buffer.from('\r\n--' + o.boundary, 'latin1');
    this.outBoundary = o.outBoundary;
    this.keep = o.keep;
    this.maxPeek = o.maxPeekBytes ?? 1024 * 1024;
    this.maxHeader = o.maxHeaderBytes ?? 16 * 1024;
    this.partsOut = o.partsBefore ?? 0;
    this.writeClose = o.writeClose ?? true;
    this.headSentinel = o.headSentinel ?? false;
  }

  /**
   * Feed one chunk; throws MultipartError on a malformed body. The chunk may be a view into a
   * buffer that is reused after this call: what is handed to `out` during the call is passed by
   * reference (valid for the call), what the parser keeps (a partial delimiter, part headers, a
   * part start while its SOP Instance UID is looked for) is copied.
   */
  write(chunk: Buffer): void {
    const c = this.carry;
    if (c.length === 0) return this.consume(chunk);
    const need = this.delim.length - c.length;
    if ((this.state === 'body' || this.state === 'preamble') && chunk.length >= need) {
      // The carry is a proper prefix of the delimiter ("\r" occurs in it only at its start, so
      // no delimiter can begin later in the carry): either the chunk's first `need` bytes
      // complete it, or the carried bytes were data. No copy of the chunk either way.
      this.carry = EMPTY;
      if (chunk.compare(this.delim, c.length, this.delim.length, 0, need) === 0) {
        if (this.state === 'body') this.endPart();
        this.state = 'afterDelim';
        this.counted = -1;
        return this.consume(chunk.subarray(need));
      }
      if (this.state === 'body' && this.counted === 0) throw new MultipartError('multipart part longer than its Content-Length');
      if (this.state === 'body') this.body(c);
      return this.consume(chunk);
    }
    this.consume(Buffer.concat([c, chunk]));
  }

  /** Start of the longest suffix of buf[from..] that is a proper prefix of the delimiter, else buf.length. */
  private partialAt(buf: Buffer, from: number): number {
    const d = this.delim;
    let i = Math.max(from, buf.length - (d.length - 1));
    for (;;) {
      i = buf.indexOf(13, i);
      if (i < 0) return buf.length;
      if (buf.compare(d, 0, buf.length - i, i, buf.length) === 0) return i;
      i++;
    }
  }

  /** Run the state machine over buf; each step returns where it stopped, or -1 when it needs more input. */
  private consume(buf: Buffer): void {
    let pos = 0;
    this.carry = EMPTY;
    while (pos >= 0 && this.state !== 'done') {
      switch (this.state) {
        case 'preamble':
          pos = this.preamble(buf, pos);
          break;
        case 'afterDelim':
          pos = this.delimiterLine(buf, pos);
          break;
        case 'headers':
          pos = this.partHeaders(buf, pos);
          break;
        case 'body':
          pos = this.partBody(buf, pos);
          break;
      }
    }
  }

  /** Keep the unfinished rest for the next chunk (copied: the chunk may be reused). */
  private keepRest(buf: Buffer, from: number): number {
    if (from < buf.length) this.carry = Buffer.from(buf.subarray(from));
    return -1;
  }

  /** Everything before the first delimiter is preamble (RFC 2046 §5.1.1), ignored. */
  private preamble(buf: Buffer, pos: number): number {
    const idx = buf.indexOf(this.delim, pos);
    if (idx < 0) return this.keepRest(buf, this.partialAt(buf, pos));
    this.state = 'afterDelim';
    return idx + this.delim.length;
  }

  /** After "--boundary": "--" closes the body; else only transport padding, then CRLF. */
  private delimiterLine(buf: Buffer, pos: number): number {
    if (buf.length - pos < 2) return this.keepRest(buf, pos);
    if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) {
      this.state = 'done'; // close delimiter; the epilogue is ignored
      return -1;
    }
    const eol = buf.indexOf(CRLF, pos);
    if (eol < 0) {
      if (buf.length - pos > 256) throw new MultipartError('malformed multipart delimiter line');
      return this.keepRest(buf, pos);
    }
    // only transport padding (LWSP) may follow the boundary on its line
    if (!/^[ \t]*$/.test(buf.toString('latin1', pos, eol))) throw new MultipartError('malformed multipart delimiter line');
    this.state = 'headers';
    return eol + 2;
  }

  /** Part headers up to the empty line (a part may have none). */
  private partHeaders(buf: Buffer, pos: number): number {
    let end: number;
    let next: number;
    if (buf.length - pos >= 2 && buf[pos] === 0x0d && buf[pos + 1] === 0x0a) {
      end = pos;
      next = pos + 2; // part without headers
    } else {
      const idx = buf.indexOf(CRLFCRLF, pos);
      if (idx < 0) {
        if (buf.length - pos > this.maxHeader) throw new MultipartError('multipart part headers too large');
        return this.keepRest(buf, pos);
      }
      end = idx;
      next = idx + 4;
    }
    this.rawHeaders = Buffer.from(buf.subarray(pos, end));
    this.counted = contentLengthOf(this.rawHeaders);
    this.state = 'body';
    this.partsIn++;
    this.decided = null;
    this.peek = [];
    this.peekLen = 0;
    return next;
  }

  /** Part data up to the next delimiter; a tail that may start the delimiter is carried over. */
  private partBody(buf: Buffer, pos: number): number {
    if (this.counted >= 0) return this.countedBody(buf, pos);
    const idx = buf.indexOf(this.delim, pos);
    if (idx < 0) {
      // all of it is part data but a tail that may start the next delimiter (usually none)
      const end = this.partialAt(buf, pos);
      if (end > pos) this.body(pos === 0 && end === buf.length ? buf : buf.subarray(pos, end));
      return this.keepRest(buf, end);
    }
    if (idx > pos) this.body(buf.subarray(pos, idx));
    this.endPart();
    this.state = 'afterDelim';
    return idx + this.delim.length;
  }

  /**
   * A part that declares its Content-Length (as Orthanc's do): its body is handed on without
   * searching it for the boundary, and the delimiter must follow exactly at its end — a wrong
   * length is a malformed body (decisions.md D131).
   */
  private countedBody(buf: Buffer, pos: number): number {
    const n = Math.min(this.counted, buf.length - pos);
    if (n > 0) this.body(pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n));
    this.counted -= n;
    pos += n;
    if (this.counted > 0) return -1;
    const d = this.delim;
    const have = Math.min(d.length, buf.length - pos);
    if (buf.compare(d, 0, have, pos, pos + have) !== 0) throw new MultipartError('multipart part longer than its Content-Length');
    if (have < d.length) return this.keepRest(buf, pos); // a delimiter prefix: completed by the next chunk (write())
    this.counted = -1;
    this.endPart();
    this.state = 'afterDelim';
    return pos + d.length;
  }

  private body(data: Buffer): void {
    if (this.decided === true) {
      this.out(data);
      return;
    }
    if (this.decided === false) return;
    this.peek.push(data);
    this.peekLen += data.length;
    this.tryDecide(false);
  }

  private tryDecide(final: boolean): void {
    // a single piece may be a view of the caller's chunk: copied only if it has to be kept
    const b = this.peek.length === 1 ? this.peek[0]! : Buffer.concat(this.peek);
    const r = peekSopInstanceUid(b);
    if (r.kind === 'need-more' && !final && this.peekLen < this.maxPeek) {
      this.peek = [this.peek.length === 1 ? Buffer.from(b) : b];
      return;
    }
    const keep = r.kind === 'found' && this.keep(r.uid);
    this.decided = keep;
    this.peek = [];
    if (!keep) {
      this.partsDropped++;
      return;
    }
    if (this.headSentinel) this.out(PART_HEAD);
    else this.out(Buffer.from((this.partsOut > 0 ? '\r\n--' : '--') + this.outBoundary + '\r\n', 'latin1'));
    this.out(this.rawHeaders.length ? Buffer.concat([this.rawHeaders, CRLFCRLF]) : CRLF);
    this.partsOut++;
    if (b.length) this.out(b);
  }

  private endPart(): void {
    if (this.decided === null) this.tryDecide(true);
  }

  /** End of input: throws when the close delimiter never came (a truncated body). */
  end(): void {
    if (this.state !== 'done') throw new MultipartError('multipart body ended before its close delimiter');
    if (this.writeClose && this.partsOut > 0) this.out(Buffer.from('\r\n--' + this.outBoundary + '--\r\n', 'latin1'));
  }
}

/** A part's Content-Length header field (RFC 2045 style headers, latin1), or -1 when absent or not one decimal number. */
function contentLengthOf(headers: Buffer): number {
  const text = headers.toString('latin1');
  const m = /(?:^|\r\n)content-length[ \t]*:[ \t]*(\d{1,15})[ \t]*(?:\r\n|$)/i.exec(text);
  if (!m) return -1;
  return text.match(/(?:^|\r\n)content-length[ \t]*:/gi)!.length === 1 ? Number(m[1]) : -1;
}

/** The boundary parameter of a multipart Content-Type (quoted or not), or undefined (RFC 2046 §5.1.1: 1–70 characters). */
export function boundaryOf(contentType: string | undefined): string | undefined {
  const mt = parseContentType(contentType);
  const b = mt?.type.startsWith('multipart/') ? mt.params.boundary : undefined;
  return b && b.length <= 70 ? b : undefined;
}
