/**
 * Reading one archive through standard DICOMweb (PS3.18): QIDO-RS for studies and series
 * (§10.6), WADO-RS series metadata (§10.4.1.1.2, bulk data left as BulkDataURI) for the
 * instances. Metadata arrives as one JSON array per series; it is split into its top-level
 * documents while it streams in, so each document is parsed, handed on and dropped.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { GatewayError } from '../http/errors.js';
import type { Upstream } from '../dicomweb/upstream.js';
import type { DicomJson } from './build.js';

const DICOM_JSON = 'application/dicom+json, application/json;q=0.9';
/** Series attributes the Image Library needs (TID 1602) beyond the QIDO-RS defaults. */
const SERIES_FIELDS = ['00080021', '00080031', '0008103E', '00180015', '00200060'];
const STUDY_FIELDS = ['00081030', '00080090', '00081032', '00080051', '00201208', '00201206'];
const PAGE = 500;

/** Splits a streamed JSON array into its top-level elements (as text) without parsing the rest. */
export class JsonArraySplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private parts: string[] = [];

  /** Feed text; returns the elements completed by it. */
  push(text: string): string[] {
    const out: string[] = [];
    let start = this.depth >= 2 ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        this.depth++;
        if (this.depth === 2) start = i;
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 1 && start >= 0) {
          this.parts.push(text.slice(start, i + 1));
          out.push(this.parts.join(''));
          this.parts = [];
          start = -1;
        }
      }
    }
    if (start >= 0 && this.depth >= 2) this.parts.push(text.slice(start));
    return out;
  }
}

async function drain(body: Readable): Promise<void> {
  body.resume();
  await new Promise((r) => body.once('end', r).once('error', r).once('close', r));
}

export class DicomwebSource {
  private readonly signal: AbortSignal;
  constructor(readonly upstream: Upstream, signal?: AbortSignal) {
    // a whole study is read within 10 minutes, or abandoned (the caller may abort sooner)
    const limit = AbortSignal.timeout(600_000);
    this.signal = signal ? AbortSignal.any([signal, limit]) : limit;
  }

  private async open(path: string): Promise<Readable | undefined> {
    const r = await this.upstream.get(path, { accept: DICOM_JSON }, this.signal);
    if (r.status === 204 || r.status === 404) {
      await drain(r.body);
      return undefined;
    }
    if (r.status < 200 || r.status > 299) {
      await drain(r.body);
      throw new GatewayError(502, 'GW_UPSTREAM_ERROR', `Upstream "${this.upstream.name}" answered ${r.status} to a DICOMweb request`);
    }
    return r.body;
  }

  /** Each top-level element of a JSON array response, parsed one at a time. */
  async *stream(path: string): AsyncGenerator<DicomJson> {
    const body = await this.open(path);
    if (!body) return;
    const split = new JsonArraySplitter();
    const utf8 = new StringDecoder('utf8'); // a character may straddle two chunks
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (const doc of split.push(utf8.write(chunk))) yield JSON.parse(doc) as DicomJson;
      }
    } catch (err) {
      if (err instanceof SyntaxError) throw new GatewayError(502, 'GW_UPSTREAM_ERROR', `Upstream "${this.upstream.name}" sent malformed DICOM JSON`);
      throw err;
    }
  }

  private async list(path: string): Promise<DicomJson[]> {
    const out: DicomJson[] = [];
    for await (const d of this.stream(path)) out.push(d);
    return out;
  }

  async study(studyUid: string): Promise<DicomJson | undefined> {
    const q = new URLSearchParams({ StudyInstanceUID: studyUid });
    for (const f of STUDY_FIELDS) q.append('includefield', f);
    return (await this.list(`/studies?${q}`))[0];
  }

  async series(studyUid: string): Promise<DicomJson[]> {
    const q = new URLSearchParams();
    for (const f of SERIES_FIELDS) q.append('includefield', f);
    return this.list(`/studies/${encodeURIComponent(studyUid)}/series?${q}`);
  }

  /** The series' instance metadata documents, streamed. */
  metadata(studyUid: string, seriesUid: string): AsyncGenerator<DicomJson> {
    return this.stream(`/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`);
  }

  /**
   * Studies in a StudyDate range (QIDO-RS range matching, PS3.4 C.2.2.2.5), paged with
   * limit/offset; `from`/`to` "YYYYMMDD" or undefined for open ends; both undefined = all.
   */
  async *studies(range: { from?: string; to?: string }): AsyncGenerator<DicomJson> {
    for (let offset = 0; ; offset += PAGE) {
      const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
      if (range.from || range.to) q.set('StudyDate', `${range.from ?? ''}-${range.to ?? ''}`);
      q.append('includefield', '00201208');
      const page = await this.list(`/studies?${q}`);
      yield* page;
      if (page.length < PAGE) return;
    }
  }
}
