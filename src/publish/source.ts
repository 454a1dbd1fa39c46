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
/** Series attributes the Image Library needs (TID 1602) beyond the QIDO-RS defaults, and the series' instance count (a default, asked for in case an archive omits it). */
const SERIES_FIELDS = ['00080021', '00080031', '0008103E', '00180015', '00200060', '00201209'];
const STUDY_FIELDS = ['00081030', '00080090', '00081032', '00080051', '00201208', '00201206'];
const PAGE = 500;
/** Bodies up to this size are parsed whole; longer ones are split as they stream in. */
const WHOLE_BODY_LIMIT = 4 * 2 ** 20;

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

function parseEach(docs: string[]): DicomJson[] {
  return docs.map((d) => JSON.parse(d) as DicomJson);
}

/** A whole JSON array response's elements (an empty body is an empty list). */
function wholeArray(text: string): DicomJson[] {
  if (!text.trim()) return [];
  const v: unknown = JSON.parse(text);
  if (!Array.isArray(v)) throw new SyntaxError('not a JSON array');
  return v.filter((d): d is DicomJson => !!d && typeof d === 'object' && !Array.isArray(d));
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

  /**
   * Each top-level element of a JSON array response. A body up to WHOLE_BODY_LIMIT is parsed in
   * one JSON.parse (native, no scan in JavaScript); a longer one is split while it streams in, so
   * a series of thousands of instances never has all its documents in memory at once.
   */
  async *stream(path: string): AsyncGenerator<DicomJson> {
    const body = await this.open(path);
    if (!body) return;
    const held: Buffer[] = [];
    let size = 0;
    let split: { splitter: JsonArraySplitter; utf8: StringDecoder } | undefined;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (!split) {
          held.push(chunk);
          size += chunk.length;
          if (size <= WHOLE_BODY_LIMIT) continue;
          split = { splitter: new JsonArraySplitter(), utf8: new StringDecoder('utf8') }; // a character may straddle two chunks
          for (const c of held.splice(0)) yield* parseEach(split.splitter.push(split.utf8.write(c)));
        } else yield* parseEach(split.splitter.push(split.utf8.write(chunk)));
      }
      if (!split) yield* wholeArray(Buffer.concat(held, size).toString('utf8'));
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
