/**
 * ITI-65 Provide Document Bundle (MHD ITI-65): a transaction Bundle with one SubmissionSet List,
 * DocumentReference(s), the Binary (KOS `application/dicom` or FHIR manifest `application/fhir+json`)
 * or FHIR document Bundle each one points at, optional Patient, and optional PATCH entries setting an
 * old DocumentReference to superseded (MHD replace). Processed atomically: one database transaction.
 *
 * Response: `transaction-response` Bundle, one entry per request entry in request order, `201 Created`
 * + location (absolute URL of the gateway's resulting resource); `200 OK` for an idempotent
 * re-submission and for PATCH/Patient entries. Warnings (MHD codes such as
 * PartialTransformContentNotProcessed, PartialFolderContentNotProcessed) travel in
 * entry.response.outcome.
 */
import { hash } from 'node:crypto';
import type { Config } from '../config.js';
import { GatewayError } from '../http/errors.js';
import { patientId as patientIdOf } from '../model/ids.js';
import type { Manifest, ValidationIssue } from '../model/manifest.js';
import type { Db } from '../store/db.js';
import {
  findManifestByDocRef,
  insertSubmissionSet,
  lockStudies,
  runInTransaction,
  setManifestStatus,
  setSubmissionSetOf,
  type Token,
  type Tx,
} from '../store/manifests.js';
import { FAILURE, IngestError, parseFhirManifest, parseKos, storeManifestTx, type IngestResult, type ParsedManifest } from './service.js';
import { issuerToSystem, manifestToDocumentReferences, storeRendering, submittedDocRefMetadata, type DocRefMetadata, type MappingContext } from '../fhir/mapping/index.js';

type Json = Record<string, any>;

const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';

const invalid = (message: string, expression?: string) => new GatewayError(400, 'GW_ITI65_INVALID', message, { expression: expression ? [expression] : undefined });
const unprocessable = (code: string, message: string, expression?: string) => new GatewayError(422, code, message, { expression: expression ? [expression] : undefined });

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function listCode(r: Json): string | undefined {
  for (const c of r.code?.coding ?? []) if (typeof c?.code === 'string') return c.code;
  return undefined;
}

/** "DocumentReference/abc", ".../fhir/DocumentReference/abc/_history/2" → "abc" */
function docRefIdOf(ref: unknown): string | undefined {
  if (typeof ref !== 'string') return undefined;
  const m = /(?:^|\/)DocumentReference\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  return m?.[1];
}

interface EntryPlan {
  kind: 'submission-set' | 'folder' | 'docref' | 'binary' | 'document' | 'patient' | 'patch';
  index: number;
  entry: Json;
  warnings: Warning[];
  /** docref: index of the content entry; content: parsed manifest */
  contentIndex?: number;
  parsed?: ParsedManifest;
  metadata?: DocRefMetadata;
  replaces?: string[];
  patchTarget?: string;
  patchStatus?: 'superseded' | 'entered-in-error';
  result?: IngestResult;
}

function decodeBase64(s: unknown, path: string): Buffer {
  if (typeof s !== 'string' || !s) throw unprocessable('GW_ITI65_BINARY_EMPTY', 'Binary.data is missing', path);
  return Buffer.from(s, 'base64');
}

/** The identifier the guides compare masterIdentifier with: KOS SOP Instance UID, or the FHIR Bundle's identifier. */
type DocIdentifier = { system?: string; value?: string };

function parseContent(e: Json, path: string, config: Readonly<Config>): { parsed: ParsedManifest; identifier: DocIdentifier } {
  const r = e.resource as Json;
  const fhirId = (b: unknown): DocIdentifier => (isObj(b) && isObj(b.identifier) ? b.identifier : {});
  if (r.resourceType === 'Bundle') {
    const raw = Buffer.from(JSON.stringify(r), 'utf8');
    return { parsed: parseFhirManifest(r, raw, config), identifier: fhirId(r) };
  }
  const ct = String(r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const bytes = decodeBase64(r.data, `${path}.data`);
  if (ct === 'application/dicom') {
    const k = parseKos(bytes, config);
    if (k.kind !== 'manifest') throw new IngestError(422, 'GW_NOT_A_MANIFEST', 'An IOCM rejection note is not a document; send it with STOW-RS or POST /fhir/Binary', FAILURE.sopClassNotSupported);
    return { parsed: k.manifest, identifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:${k.manifest.model.document.sopInstanceUid}` } };
  }
  if (ct === 'application/fhir+json' || ct === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw unprocessable('GW_ITI65_BINARY_NOT_JSON', 'Binary.data declared application/fhir+json is not valid JSON', `${path}.data`);
    }
    return { parsed: parseFhirManifest(json, bytes, config), identifier: fhirId(json) };
  }
  throw unprocessable('GW_ITI65_UNSUPPORTED_CONTENT', `Binary.contentType "${ct || '(none)'}" is not a MADO manifest (application/dicom or application/fhir+json)`, `${path}.contentType`);
}

const OID_SYSTEMS = new Set(['urn:ietf:rfc:3986', 'urn:dicom:uid']);

/**
 * masterIdentifier = the document's identifier (MADO DocumentReference profiles: the KOS SOP
 * Instance UID; the MadoFhirBundle's Bundle.identifier). urn:oid: and bare OIDs are one value.
 */
function sameDocIdentifier(master: DocIdentifier, doc: DocIdentifier): boolean {
  const norm = (v: unknown) => String(v ?? '').replace(/^urn:oid:/, '');
  const v = norm(master.value);
  if (!v || v !== norm(doc.value)) return false;
  const a = master.system ?? '';
  const b = doc.system ?? '';
  return !a || !b || a === b || (/^[0-2](\.\d+)+$/.test(v) && OID_SYSTEMS.has(a) && OID_SYSTEMS.has(b));
}

function parsePatch(e: Json, path: string): 'superseded' | 'entered-in-error' {
  const r = e.resource as Json;
  if (r?.resourceType !== 'Parameters') throw unprocessable('GW_ITI65_PATCH_UNSUPPORTED', 'PATCH entries must carry an IHE.MHD.Patch.Parameters resource', path);
  const ops = (r.parameter ?? []).filter((p: Json) => p?.name === 'operation');
  if (ops.length !== 1) throw unprocessable('GW_ITI65_PATCH_UNSUPPORTED', 'PATCH Parameters must hold exactly one operation', path);
  const parts: Json[] = ops[0].part ?? [];
  const get = (n: string) => parts.find((p) => p?.name === n);
  const type = get('type')?.valueCode;
  const p = get('path')?.valueString;
  const v = get('value');
  const value = v?.valueCode ?? v?.valueString;
  if (type !== 'replace' || p !== 'DocumentReference.status' || (value !== 'superseded' && value !== 'entered-in-error')) {
    throw unprocessable('GW_ITI65_PATCH_UNSUPPORTED', 'Only "replace DocumentReference.status" with superseded or entered-in-error is supported (IHE.MHD.Patch.Parameters)', path);
  }
  return value;
}

function ssId(list: Json, fullUrl: string | undefined): string {
  const unique = (list.identifier ?? []).find((i: Json) => typeof i?.value === 'string' && /^urn:oid:/.test(i.value))?.value;
  const key = unique ?? fullUrl ?? JSON.stringify(list.identifier ?? list);
  return `ss-${hash('sha256', `submission-set:${key}`).slice(0, 32)}`;
}

function ssTokens(list: Json, patient: Manifest['patient'] | undefined): Token[] {
  const out: Token[] = [];
  // OIDs / UUIDs also bare with system '' (as the manifest identifiers, decisions.md D13/D14).
  const bare = (code: string, v: string) => {
    const m = /^urn:(?:oid|uuid):(.+)$/.exec(v);
    if (m) out.push({ code, system: '', value: m[1]! });
  };
  for (const i of list.identifier ?? []) {
    if (typeof i?.value !== 'string') continue;
    out.push({ code: 'identifier', system: typeof i.system === 'string' ? i.system : '', value: i.value });
    bare('identifier', i.value);
  }
  out.push({ code: 'code', system: MHD_LIST_TYPES, value: 'submissionset' });
  out.push({ code: 'status', system: '', value: String(list.status ?? 'current') });
  for (const ext of list.extension ?? []) {
    if (/ihe-sourceId$/.test(ext?.url ?? '') && typeof ext.valueIdentifier?.value === 'string') {
      out.push({ code: 'source-id', system: typeof ext.valueIdentifier.system === 'string' ? ext.valueIdentifier.system : '', value: ext.valueIdentifier.value });
      bare('source-id', ext.valueIdentifier.value);
    }
    if (/ihe-designationType$/.test(ext?.url ?? '')) for (const c of ext.valueCodeableConcept?.coding ?? []) if (c?.code) out.push({ code: 'designation-type', system: c.system ?? '', value: c.code });
  }
  if (patient) {
    for (const p of [...(patient.id ? [patient.id] : []), ...patient.otherIds]) {
      const t = { code: 'patient.identifier', system: issuerToSystem(p.issuer), value: p.value };
      if (p.value && !out.some((x) => x.code === t.code && x.system === t.system && x.value === t.value)) out.push(t);
    }
  }
  return out;
}

type Warning = { code: string; message: string; path?: string };

function responseEntry(status: string, location?: string, warnings: Warning[] = [], etag?: string): Json {
  const response: Json = { status };
  if (location) response.location = location;
  if (etag) response.etag = etag;
  if (warnings.length) {
    response.outcome = {
      resourceType: 'OperationOutcome',
      issue: warnings.map((w) => ({ severity: 'warning', code: 'processing', details: { coding: [{ system: 'urn:mado-gateway:issue-code', code: w.code }], text: w.message }, ...(w.path ? { expression: [w.path] } : {}) })),
    };
  }
  return { response };
}

function issueWarnings(issues: ValidationIssue[]): Warning[] {
  return issues.filter((i) => i.severity === 'warning').slice(0, 20).map((i) => ({ code: i.code, message: i.message, ...(i.path ? { path: i.path } : {}) }));
}

export interface Iti65Result {
  bundle: Json;
  patientIds: string[];
  entities: string[];
  created: number;
}

/** One request entry → its plan (kind by resource type and method); byUrl maps fullUrl and Type/id to the entry. */
function planEntry(e: unknown, i: number, byUrl: Map<string, number>): EntryPlan {
  const path = `Bundle.entry[${i}]`;
  if (!isObj(e) || !isObj(e.resource) || !isObj(e.request)) throw invalid('every entry needs resource and request', path);
  const method = String(e.request.method ?? '').toUpperCase();
  const r = e.resource as Json;
  if (typeof e.fullUrl === 'string') byUrl.set(e.fullUrl, i);
  if (typeof r.id === 'string' && typeof r.resourceType === 'string') byUrl.set(`${r.resourceType}/${r.id}`, i);
  const plan: EntryPlan = { kind: 'binary', index: i, entry: e, warnings: [] };
  if (method === 'PATCH') {
    const target = docRefIdOf(e.request.url);
    if (!target) throw unprocessable('GW_ITI65_PATCH_UNSUPPORTED', 'PATCH entries must target DocumentReference/{id}', `${path}.request.url`);
    return { ...plan, kind: 'patch', patchTarget: target, patchStatus: parsePatch(e, `${path}.resource`) };
  }
  if (method !== 'POST' && !(method === 'PUT' && r.resourceType === 'Patient')) throw unprocessable('GW_ITI65_UNSUPPORTED_ENTRY', `request.method ${method || '(none)'} is not supported for ${String(r.resourceType)} in ITI-65`, `${path}.request.method`);
  const kinds: Record<string, EntryPlan['kind']> = { DocumentReference: 'docref', Binary: 'binary', Bundle: 'document', Patient: 'patient' };
  if (r.resourceType === 'List') return { ...plan, kind: listCode(r) === 'folder' ? 'folder' : 'submission-set' };
  const kind = kinds[String(r.resourceType)];
  if (!kind) throw unprocessable('GW_ITI65_UNSUPPORTED_ENTRY', `${String(r.resourceType)} entries are not part of ITI-65`, `${path}.resource`);
  return { ...plan, kind };
}

/** Every `reference` value under x (contained resources and nested document Bundles are not walked). */
function* referencesIn(x: unknown, path: string): Generator<{ ref: string; path: string }> {
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) yield* referencesIn(x[i], `${path}[${i}]`);
    return;
  }
  if (!isObj(x)) return;
  for (const [k, v] of Object.entries(x)) {
    if (k === 'contained') continue;
    if (k === 'reference' && typeof v === 'string') yield { ref: v, path: `${path}.reference` };
    else if (typeof v === 'object') yield* referencesIn(v, `${path}.${k}`);
  }
}

/**
 * A urn:uuid: / urn:oid: reference names a Bundle entry by its fullUrl (FHIR R4 Bundle 3.3.1.4.1);
 * one that names no entry cannot resolve anywhere, so the transaction is refused (FHIR transaction
 * processing, ITI-65 §2:3.65.4.1.3: the whole Bundle succeeds or fails).
 */
function checkReferences(plans: EntryPlan[], byUrl: Map<string, number>): void {
  for (const p of plans) {
    if (p.kind === 'document' || p.kind === 'binary' || p.kind === 'patch') continue;
    for (const { ref, path } of referencesIn(p.entry.resource, `Bundle.entry[${p.index}].resource`)) {
      if (/^urn:(uuid|oid):/i.test(ref) && !byUrl.has(ref)) {
        throw unprocessable('GW_ITI65_REFERENCE_UNRESOLVED', `reference "${ref.slice(0, 80)}" names no entry of this transaction Bundle (no Bundle.entry.fullUrl matches it)`, path);
      }
    }
  }
}

/** The transaction's Patient the DocumentReference's subject names (else the only Patient entry). */
function patientEntryFor(docref: Json, plans: EntryPlan[], byUrl: Map<string, number>): Json | undefined {
  const ref = docref.subject?.reference;
  const i = typeof ref === 'string' ? byUrl.get(ref) : undefined;
  if (i !== undefined && plans[i]?.kind === 'patient') return plans[i]!.entry.resource as Json;
  const patients = plans.filter((p) => p.kind === 'patient');
  return patients.length === 1 ? (patients[0]!.entry.resource as Json) : undefined;
}

/** Resolve, parse and check one DocumentReference's document (CPU work, before the transaction). */
function prepareDocRef(d: EntryPlan, plans: EntryPlan[], byUrl: Map<string, number>, used: Set<number>, config: Readonly<Config>, ctx: MappingContext): void {
  const path = `Bundle.entry[${d.index}].resource`;
  const r = d.entry.resource as Json;
  const url = r.content?.[0]?.attachment?.url;
  const ci = typeof url === 'string' ? byUrl.get(url) : undefined;
  if (ci === undefined || !['binary', 'document'].includes(plans[ci]!.kind)) {
    throw unprocessable('GW_ITI65_ATTACHMENT_UNRESOLVED', 'content.attachment.url must point at a Binary or document Bundle entry of this transaction (ITI-65 §2:3.65.4.1.2)', `${path}.content[0].attachment.url`);
  }
  if (used.has(ci)) throw unprocessable('GW_ITI65_ATTACHMENT_SHARED', 'two DocumentReferences point at the same content entry', `${path}.content[0].attachment.url`);
  used.add(ci);
  d.contentIndex = ci;
  let identifier: DocIdentifier;
  try {
    ({ parsed: d.parsed, identifier } = parseContent(plans[ci]!.entry, `Bundle.entry[${ci}].resource`, config));
  } catch (err) {
    if (err instanceof GatewayError && !err.extra.expression) (err.extra as { expression?: string[] }).expression = [`Bundle.entry[${ci}].resource`];
    throw err;
  }
  plans[ci]!.parsed = d.parsed;
  if (isObj(r.masterIdentifier) && !sameDocIdentifier(r.masterIdentifier, identifier)) {
    const what = d.parsed.nativeFormat === 'kos' ? 'the KOS SOP Instance UID' : "the FHIR manifest's Bundle.identifier";
    throw unprocessable('GW_ITI65_IDENTIFIER_MISMATCH', `DocumentReference.masterIdentifier differs from ${what} (MADO: masterIdentifier is the document's identifier)`, `${path}.masterIdentifier`);
  }
  d.replaces = replacesOf(d, r, path);
  const derived = manifestToDocumentReferences(d.parsed.model, ctx, { status: 'current', nativeFormat: d.parsed.nativeFormat }) as unknown as { kos: Json; fhir: Json };
  const kept = submittedDocRefMetadata(r, d.parsed.nativeFormat === 'kos' ? derived.kos : derived.fhir, path, patientEntryFor(r, plans, byUrl));
  d.metadata = kept.metadata;
  d.warnings.push(...issueWarnings([...kept.warnings, ...d.parsed.warnings]));
}

/** relatesTo: replaces → targets to supersede; other codes → the MHD Partial…NotProcessed warnings. */
function replacesOf(d: EntryPlan, r: Json, path: string): string[] {
  const out: string[] = [];
  for (const rel of r.relatesTo ?? []) {
    if (rel?.code === 'replaces') {
      const t = docRefIdOf(rel.target?.reference);
      if (!t) throw unprocessable('GW_ITI65_REPLACE_TARGET', 'relatesTo.target of a replace must reference DocumentReference/{id}', `${path}.relatesTo`);
      out.push(t);
    } else {
      const name = rel?.code === 'transforms' ? 'PartialTransformContentNotProcessed' : rel?.code === 'appends' ? 'PartialAppendContentNotProcessed' : 'PartialReplaceContentNotProcessed';
      d.warnings.push({ code: name, message: `relatesTo code "${String(rel?.code)}" is not processed (the gateway links the KOS and FHIR forms itself)` });
    }
  }
  return out;
}

/** Plan the whole transaction: entry kinds, the one SubmissionSet, resolved references and parsed documents. */
function planTransaction(bundle: unknown, config: Readonly<Config>, ctx: MappingContext): { plans: EntryPlan[]; docrefs: EntryPlan[]; ss: EntryPlan } {
  if (!isObj(bundle) || bundle.resourceType !== 'Bundle') throw invalid('POST [base] expects a Bundle of type transaction (ITI-65)');
  if (bundle.type !== 'transaction') throw invalid(`Bundle.type "${String(bundle.type)}" is not supported at [base]; ITI-65 uses type transaction`, 'Bundle.type');
  const entries: Json[] = Array.isArray(bundle.entry) ? bundle.entry : [];
  if (!entries.length) throw invalid('the transaction Bundle has no entries', 'Bundle.entry');
  const byUrl = new Map<string, number>();
  const plans = entries.map((e, i) => planEntry(e, i, byUrl));
  const ss = plans.filter((p) => p.kind === 'submission-set');
  if (ss.length !== 1) throw unprocessable('GW_ITI65_SUBMISSION_SET', `an ITI-65 Bundle carries exactly one SubmissionSet List (found ${ss.length})`, 'Bundle.entry');
  const docrefs = plans.filter((p) => p.kind === 'docref');
  if (!docrefs.length && !plans.some((p) => p.kind === 'patch')) throw unprocessable('GW_ITI65_NO_DOCUMENT', 'the transaction holds no DocumentReference', 'Bundle.entry');
  checkReferences(plans, byUrl);
  const used = new Set<number>();
  for (const d of docrefs) prepareDocRef(d, plans, byUrl, used, config, ctx);
  for (const p of plans) {
    if ((p.kind === 'binary' || p.kind === 'document') && !used.has(p.index)) p.warnings.push({ code: 'GW_ITI65_UNREFERENCED_CONTENT', message: 'no DocumentReference points at this entry; it was not stored' });
    if (p.kind === 'folder') p.warnings.push({ code: 'PartialFolderContentNotProcessed', message: 'Folders are not supported; the Folder List was not stored' });
  }
  return { plans, docrefs, ss: ss[0]! };
}

/** MHD replace via PATCH (IHE.MHD.Patch.Parameters): status → superseded / entered-in-error. */
async function applyPatch(tx: Tx, p: EntryPlan, ctx: MappingContext): Promise<void> {
  const f = await findManifestByDocRef(tx, p.patchTarget!);
  if (!f) throw new GatewayError(404, 'GW_NOT_FOUND', 'the DocumentReference to update does not exist', { expression: [`Bundle.entry[${p.index}].request.url`] });
  await lockStudies(tx, [f.manifest.study_instance_uid]);
  const row = await findManifestByDocRef(tx, p.patchTarget!);
  const status = row!.manifest.status;
  if (status !== p.patchStatus && status !== 'entered-in-error') {
    if (p.patchStatus === 'superseded' && status !== 'current') throw unprocessable('GW_STATUS_TRANSITION', `a ${status} DocumentReference cannot become superseded`, `Bundle.entry[${p.index}]`);
    await setManifestStatus(tx, row!.manifest.id, p.patchStatus!, storeRendering(ctx));
  }
}

/** Store the SubmissionSet List (its items rewritten to the stored DocumentReferences). Returns false when it was stored before. */
async function storeSubmissionSet(tx: Tx, ss: EntryPlan, ssid: string, docrefs: EntryPlan[]): Promise<boolean> {
  const ssResource = ss.entry.resource as Json;
  const firstModel = docrefs[0]?.parsed?.model;
  const resource: Json = { ...ssResource, id: ssid, entry: docrefs.map((d) => ({ item: { reference: `DocumentReference/${nativeDocRef(d)}` } })) };
  if (firstModel) resource.subject = { reference: `Patient/${patientIdOf(firstModel.patient)}` };
  delete resource.meta?.versionId;
  const pid = firstModel ? patientIdOf(firstModel.patient) : undefined;
  const stored = await insertSubmissionSet(tx, { id: ssid, resource, status: String(ssResource.status ?? 'current'), patientId: pid, date: ssResource.date, tokens: ssTokens(ssResource, firstModel?.patient) });
  if (stored) await setSubmissionSetOf(tx, docrefs.map((d) => d.result!.stored.id), ssid);
  return stored;
}

/** Everything that writes, in one database transaction. */
async function executeTransaction(db: Db, ctx: MappingContext, plans: EntryPlan[], docrefs: EntryPlan[], ss: EntryPlan, ssid: string): Promise<boolean> {
  return runInTransaction(db, async (tx: Tx) => {
    // All studies locked up front in a fixed order (no lock-order deadlock between two transactions).
    await lockStudies(tx, docrefs.flatMap((d) => [d.parsed!.model.study.studyInstanceUid, ...d.parsed!.model.evidence.map((e) => e.studyInstanceUid)]));
    for (const d of docrefs) {
      const replaces: string[] = [];
      for (const t of d.replaces ?? []) {
        const f = await findManifestByDocRef(tx, t);
        if (!f) throw unprocessable('GW_REPLACE_TARGET_NOT_FOUND', `the replaced DocumentReference does not exist`, `Bundle.entry[${d.index}].resource.relatesTo`);
        replaces.push(f.manifest.id);
      }
      d.result = await storeManifestTx(tx, d.parsed!, ctx, { replaces, submissionSetId: ssid, metadata: d.metadata });
    }
    for (const p of plans.filter((x) => x.kind === 'patch')) await applyPatch(tx, p, ctx);
    return storeSubmissionSet(tx, ss, ssid, docrefs);
  });
}

/** transaction-response entry for one request entry (same order, ITI-65 §2:3.65.4.2.2). */
function responseFor(p: EntryPlan, docrefs: EntryPlan[], base: string, ssid: string, ssCreated: boolean, patientIds: string[]): Json {
  switch (p.kind) {
    case 'submission-set':
      return responseEntry(ssCreated ? '201 Created' : '200 OK', `${base}/fhir/List/${ssid}`);
    case 'docref': {
      const r = p.result!;
      return responseEntry(r.outcome === 'created' ? '201 Created' : '200 OK', `${base}/fhir/DocumentReference/${nativeDocRef(p)}`, p.warnings, `W/"${r.stored.versionId}"`);
    }
    case 'binary':
    case 'document': {
      const d = docrefs.find((x) => x.contentIndex === p.index);
      if (!d) return responseEntry('200 OK', undefined, p.warnings);
      const s = d.result!.stored;
      const loc = d.parsed!.nativeFormat === 'kos' ? `${base}/fhir/Binary/${s.binaryId}` : `${base}/fhir/Bundle/${s.bundleId}`;
      return responseEntry(d.result!.outcome === 'created' ? '201 Created' : '200 OK', loc, p.warnings);
    }
    case 'patch':
      return responseEntry('200 OK', `${base}/fhir/DocumentReference/${p.patchTarget}`);
    case 'patient':
      return responseEntry('200 OK', patientIds[0] ? `${base}/fhir/Patient/${patientIds[0]}` : undefined, [
        { code: 'GW_ITI65_PATIENT_SOURCE', message: "the submitted Patient is kept as the DocumentReference's source patient (context.sourcePatientInfo), linked to the gateway's patient derived from the manifest; it is not merged into it" },
      ]);
    case 'folder':
      return responseEntry('200 OK', undefined, p.warnings);
  }
}

/** Validate, plan and execute one ITI-65 transaction. */
export async function provideDocumentBundle(db: Db, config: Readonly<Config>, ctx: MappingContext, bundle: unknown): Promise<Iti65Result> {
  const { plans, docrefs, ss } = planTransaction(bundle, config, ctx);
  const base = ctx.publicBaseUrl.replace(/\/+$/, '');
  const ssid = ssId(ss.entry.resource as Json, ss.entry.fullUrl);
  const ssCreated = await executeTransaction(db, ctx, plans, docrefs, ss, ssid);
  const patientIds = [...new Set(docrefs.map((d) => d.result!.stored.patientId).filter(Boolean))];
  const entities = [
    `List/${ssid}`, // MHD audit-65: the submission set entity
    ...docrefs.map((d) => `DocumentReference/${nativeDocRef(d)}`),
    ...plans.filter((p) => p.kind === 'patch').map((p) => `DocumentReference/${p.patchTarget}`),
  ];
  return {
    bundle: { resourceType: 'Bundle', type: 'transaction-response', entry: plans.map((p) => responseFor(p, docrefs, base, ssid, ssCreated, patientIds)) },
    patientIds,
    entities,
    created: docrefs.filter((d) => d.result!.outcome === 'created').length,
  };
}

function nativeDocRef(d: EntryPlan): string {
  const s = d.result!.stored;
  return d.parsed!.nativeFormat === 'kos' ? s.kosDocRefId : s.fhirDocRefId;
}
