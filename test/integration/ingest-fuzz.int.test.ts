/**
 * Seeded mutation fuzzer over the KOS test fixtures, through both KOS ingest paths (STOW-RS and
 * POST /fhir/Binary): bit flips, byte overwrites, truncations, insertions, corrupted lengths,
 * spliced chunks and NUL bytes inside text values. Every answer is a 2xx or a 4xx with a JSON
 * body; never a 5xx, never a STOW "processing failure", never an error in the log. The seed is
 * printed so a failure can be replayed (FUZZ_SEED=…).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTestApp, listenTestApp, type TestApp } from '../helpers/app.js';
import { kos, multipart } from './ingest-fixtures.js';

const TOTAL = Number(process.env.FUZZ_MUTATIONS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261207);
const STOW_BATCH = 100;

let t: TestApp;
let base: string;
let stop: () => void;
before(async () => {
  t = await createTestApp({ LOG_LEVEL: 'info' });
  const l = await listenTestApp(t);
  base = l.base;
  stop = l.close;
});
after(async () => {
  stop();
  await t.close();
});

/** mulberry32: small, seedable, good enough to spread mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXT_VRS = ['LO', 'SH', 'PN', 'UT', 'LT', 'ST', 'UI', 'CS', 'DA', 'TM'];
const ALL_VRS = [...TEXT_VRS, 'SQ', 'US', 'UL', 'OB', 'UN', 'IS', 'DS', 'UR', 'AE'];

/** Offsets of explicit-VR element headers (VR letters at +4) found by pattern. */
function vrOffsets(b: Buffer, vrs: string[]): number[] {
  const out: number[] = [];
  for (let i = 4; i + 8 < b.length; i++) if (vrs.includes(b.toString('latin1', i, i + 2)) && b[i - 4]! % 2 === 0) out.push(i);
  return out;
}

function mutate(src: Buffer, fixtures: Buffer[], r: () => number): Buffer {
  const b = Buffer.from(src);
  const at = (n = b.length) => Math.floor(r() * n);
  switch (Math.floor(r() * 8)) {
    case 0: for (let k = 1 + at(4); k > 0; k--) { const i = at(); b[i] = b[i]! ^ (1 << at(8)); } return b;
    case 1: for (let k = 1 + at(8); k > 0; k--) b[at()] = [0x00, 0xff, 0x80, 0x20, 0x5c][at(5)]!; return b;
    case 2: return b.subarray(0, at());
    case 3: { const i = at(); const ins = Buffer.alloc(1 + at(16)); for (let k = 0; k < ins.length; k++) ins[k] = r() < 0.5 ? 0 : at(256); return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]); }
    case 4: { // corrupt a length field after a VR
      const offs = vrOffsets(b, ALL_VRS);
      if (!offs.length) return b;
      const i = offs[at(offs.length)]!;
      const v = [0, 1, 0xffff, 0xfffe, at(65536), b.length, 0x7fff][at(7)]!;
      b.writeUInt16LE(v & 0xffff, i + 2);
      return b;
    }
    case 5: { // splice a chunk of another fixture in
      const o = fixtures[at(fixtures.length)]!;
      const s = at(o.length);
      const chunk = o.subarray(s, s + 1 + at(512));
      const i = at();
      return Buffer.concat([b.subarray(0, i), chunk, b.subarray(i + (r() < 0.5 ? chunk.length : 0))]);
    }
    default: { // NUL (or another C0 control) inside a text value
      const offs = vrOffsets(b, TEXT_VRS);
      if (!offs.length) return b;
      const i = offs[at(offs.length)]!;
      const len = b.readUInt16LE(i + 2);
      if (len < 2 || i + 4 + len > b.length) return b;
      b[i + 4 + at(len - 1)] = r() < 0.7 ? 0x00 : [0x01, 0x07, 0x1f][at(3)]!;
      return b;
    }
  }
}

function fixtures(): Buffer[] {
  const dir = path.resolve(import.meta.dirname, '../fixtures/kos');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.dcm')).map((f) => fs.readFileSync(path.join(dir, f)));
  return [...files, kos('fuzz-a').bytes, kos('fuzz-b', { series: 4, perSeries: 5 }).bytes];
}

type Tally = Record<string, number>;
const bump = (t: Tally, k: string) => (t[k] = (t[k] ?? 0) + 1);

test(`${TOTAL} seeded mutations through STOW-RS and POST /fhir/Binary: no 5xx, a JSON body for every refusal`, async () => {
  const fx = fixtures();
  const r = rng(SEED);
  const statuses: Tally = {};
  const bad: string[] = [];
  const stowShare = Math.floor(TOTAL * 0.8);
  const t0 = Date.now();
  // Mutations are drawn first (deterministic for the seed), then sent by a few concurrent workers.
  const stowBatches: Buffer[][] = [];
  for (let done = 0; done < stowShare; done += STOW_BATCH) stowBatches.push(Array.from({ length: Math.min(STOW_BATCH, stowShare - done) }, () => mutate(fx[Math.floor(r() * fx.length)]!, fx, r)));
  const binaries = Array.from({ length: TOTAL - stowShare }, () => mutate(fx[Math.floor(r() * fx.length)]!, fx, r));
  const pool = async <T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(Array.from({ length: n }, async () => { while (next < items.length) { const i = next++; await fn(items[i]!, i); } }));
  };
  // STOW-RS: batches of multipart parts (each part its own instance and transaction).
  await pool(stowBatches, 2, async (parts, bi) => {
    const mp = multipart(parts.map((body) => ({ body })));
    const res = await fetch(`${base}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': mp.contentType, accept: 'application/dicom+json' }, body: new Uint8Array(mp.body) });
    const text = await res.text();
    bump(statuses, `stow ${res.status}`);
    if (res.status >= 500) bad.push(`STOW batch ${bi}: ${res.status}`);
    const body = JSON.parse(text);
    statuses['stow accepted'] = (statuses['stow accepted'] ?? 0) + (body['00081199']?.Value?.length ?? 0);
    for (const item of body['00081198']?.Value ?? []) {
      bump(statuses, `stow-failure 0x${Number(item['00081197']?.Value?.[0]).toString(16)}`);
      if (item['00000902']?.Value?.[0] === 'processing failure') bad.push(`STOW batch ${bi}: processing failure`);
    }
  });
  // POST /fhir/Binary: one mutation per request.
  await pool(binaries, 4, async (bytes, i) => {
    const res = await fetch(`${base}/fhir/Binary`, { method: 'POST', headers: { 'content-type': 'application/dicom', accept: 'application/fhir+json' }, body: new Uint8Array(bytes) });
    const text = await res.text();
    bump(statuses, `binary ${res.status}`);
    if (res.status >= 500) bad.push(`Binary mutation ${i}: ${res.status} ${text.slice(0, 200)}`);
    else if (res.status >= 400) {
      const body = JSON.parse(text);
      if (body.resourceType !== 'OperationOutcome' || !body.issue?.[0]?.details) bad.push(`Binary mutation ${i}: ${res.status} without an OperationOutcome`);
    }
  });
  const errors = t.logs.filter((l) => /"level":(50|60)/.test(l));
  console.log(`# fuzz seed=${SEED} mutations=${TOTAL} in ${Date.now() - t0} ms: ${JSON.stringify(statuses)}`);
  assert.deepEqual(bad.slice(0, 10), []);
  assert.deepEqual(errors.slice(0, 3), []);
  // The fuzzer must reach the store, not only the parser: some mutations are accepted.
  assert.ok((statuses['stow accepted'] ?? 0) + (statuses['binary 201'] ?? 0) > 0, 'no mutation was accepted');
});

test('a NUL inside a text value (not UI padding): 422 before any SQL, on both paths; UI NUL padding is trimmed', async () => {
  const k = kos('fuzz-nul', { description: 'Head CT' });
  const i = k.bytes.indexOf(Buffer.from('Head CT', 'latin1'));
  assert.ok(i > 0);
  const bad = Buffer.from(k.bytes);
  bad[i + 4] = 0x00;
  const res = await fetch(`${base}/fhir/Binary`, { method: 'POST', headers: { 'content-type': 'application/dicom', accept: 'application/fhir+json' }, body: new Uint8Array(bad) });
  assert.equal(res.status, 422);
  const body = await res.json();
  assert.equal(body.issue[0].details.coding[0].code, 'GW_FORBIDDEN_CHARACTER');
  const mp = multipart([{ body: bad }]);
  const stow = await fetch(`${base}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': mp.contentType }, body: new Uint8Array(mp.body) });
  assert.equal(stow.status, 409);
  assert.equal((await stow.json())['00081198'].Value[0]['00081197'].Value[0], 0xc000);
  const n = await t.tdb.db.raw('select count(*)::int as n from manifest where sop_instance_uid = ?', [k.model.document.sopInstanceUid]);
  assert.equal(n.rows[0].n, 0);
  // The untouched KOS (its UIDs padded with NUL to even length) is stored.
  const ok = await fetch(`${base}/fhir/Binary`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: new Uint8Array(k.bytes) });
  assert.equal(ok.status, 201);
});

test('FHIR input holding U+0000: 422 on POST /fhir/Bundle and ITI-65', async () => {
  const { fhirManifest, provideBundle } = await import('./ingest-fixtures.js');
  const f = fhirManifest('fuzz-fhir-nul');
  f.bundle.entry[0].resource.title = 'a\u0000b';
  const r1 = await fetch(`${base}/fhir/Bundle`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(f.bundle) });
  assert.equal(r1.status, 422);
  assert.equal((await r1.json()).issue[0].details.coding[0].code, 'GW_FORBIDDEN_CHARACTER');
  const b = provideBundle([{ kos: kos('fuzz-iti65-nul') }]);
  b.entry[1].resource.description = 'x\u0000';
  const r2 = await fetch(`${base}/fhir`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(b) });
  assert.equal(r2.status, 422);
  assert.deepEqual((await r2.json()).issue[0].expression, ['Bundle.entry[1].resource.description']);
});

test('STOW-RS Error Comment: at most 64 characters, cut at a word boundary', async () => {
  const { errorComment } = await import('../../src/ingest/stow-routes.js');
  const long = 'The manifest is invalid: Study Instance UID is missing; Series Instance UID is missing';
  const c = errorComment(long);
  assert.ok(c.length <= 64, c);
  assert.equal(c, 'The manifest is invalid: Study Instance UID is missing; Series…');
  assert.equal(errorComment('short'), 'short');
});
