/**
 * The one ingest service behind every write path (ITI-65, STOW-RS, POST Binary/Bundle, the CLI
 * import via those routes, FHIR status updates). Each submission is one transaction
 * (store/manifests.ts runInTransaction): on any failure nothing is stored.
 *
 * Lifecycle (contract "Manifest identity"):
 * - same SOP Instance UID + same bytes (sha256) → idempotent "duplicate", same ids;
 *   same SOP Instance UID + different bytes → 409 GW_MANIFEST_CONFLICT.
 * - a new manifest for a study already held becomes current; the previous current one is
 *   superseded (both its docrefs re-rendered) and the new one records `replaces`.
 *   An explicit replace (ITI-65 relatesTo replaces) supersedes the named manifest as well.
 * - IOCM rejection note: the referenced instances are recorded in rejected_instance; every current
 *   manifest referencing one of them is superseded by a new version without the rejected instances
 *   (a KOS written with writeKos — or a FHIR Bundle if the original was FHIR-native — with a
 *   deterministic derived SOP Instance UID, so re-applying the note is a no-op). When nothing
 *   remains, the manifest is superseded without successor. Manifests arriving later that reference
 *   rejected instances are stored as sent (the DICOMweb layer consults rejected_instance).
 * - entered-in-error (FHIR status update): the manifest is kept, never deleted; its docrefs are
 *   re-rendered; no older version is revived (the study then has no current manifest).
 *
 * Concurrency: pg_advisory_xact_lock(hashtext(study uid)) per study inside the transaction plus the
 * partial unique index manifest_one_current_per_study; serialization/deadlock/unique-violation
 * errors are retried (a racing duplicate then answers "duplicate").
 */
import type { Config } from '../config.js';
import { readKos, writeKos, KosWriteError } from '../dicom/index.js';
import { fhirToManifest, manifestToFhirBundle, storeRendering, toKosWritable, type DocRefMetadata, type MappingContext } from '../fhir/mapping/index.js';
import { derivedUid } from '../model/ids.js';
import { findUnstorableText } from '../model/text.js';
import { validateFhirResource } from '../fhir/validate.js';
import { listReferences, type Code, type Manifest, type ValidationIssue } from '../model/manifest.js';
import { GatewayError } from '../http/errors.js';
import type { Db } from '../store/db.js';
import {
  currentManifestsReferencing,
  findSopAndCurrent,
  findSopsAndCurrent,
  findManifestByDocRef,
  findManifestById,
  findManifestBySop,
  insertManifest,
  loadDocRef,
  loadDocRefMetadata,
  loadContent,
  loadModel,
  lockStudies,
  recordRejections,
  rejectedAmong,
  runInTransaction,
  setManifestStatus,
  sha256Hex,
  type ManifestRow,
  type ManifestStatus,
  type NativeFormat,
  type StoredManifest,
  type Tx,
} from '../store/manifests.js';
import { manifestResourceIds } from '../model/ids.js';
import { GroupCommit, type GroupCommitStats, type GroupRunner } from '../store/group-commit.js';

/** DICOM failure reasons (PS3.18 §10.5.3 / PS3.4 Annex B) used by STOW-RS. */
export const FAILURE = {
  processingFailure: 0x0110,
  duplicateSopInstance: 0x0111,
  sopClassNotSupported: 0x0122,
  outOfResources: 0xa700,
  doesNotMatchSopClass: 0xa900,
  cannotUnderstand: 0xc000,
} as const;

/** An ingest refusal: HTTP status + GW_* code for FHIR, a DICOM failure reason for STOW-RS. */
export class IngestError extends GatewayError {
  constructor(status: number, code: string, message: string, public readonly failureReason: number, readonly issues: ValidationIssue[] = []) {
    super(status, code, message, { issues: issues.map(toOutcomeIssue) });
    this.name = 'IngestError';
  }
}

function toOutcomeIssue(i: ValidationIssue) {
  return {
    severity: i.severity,
    code: i.severity === 'error' ? ('invalid' as const) : ('informational' as const),
    details: { coding: [{ system: 'urn:mado-gateway:issue-code', code: i.code }], text: i.message },
    ...(i.path ? { expression: [i.path] } : {}),
  };
}

export interface IngestDeps {
  db: Db;
  config: Readonly<Config>;
}

/** A parsed submission, ready to be stored. */
export interface ParsedManifest {
  model: Manifest;
  nativeFormat: NativeFormat;
  content: Uint8Array;
  contentType: string;
  sha256: string;
  warnings: ValidationIssue[];
}

export interface ParsedRejection {
  note: Manifest;
  warnings: ValidationIssue[];
}

export type ParsedKos = { kind: 'manifest'; manifest: ParsedManifest } | { kind: 'rejection-note'; rejection: ParsedRejection };

export interface IngestResult {
  outcome: 'created' | 'duplicate';
  stored: StoredManifest;
  /** Manifest ids this submission superseded (implicitly by study, or by an explicit replace) */
  superseded: string[];
  warnings: ValidationIssue[];
}

export interface RejectionResult {
  rejected: number;
  superseded: string[];
  created: StoredManifest[];
  warnings: ValidationIssue[];
}

export function mappingContext(config: Readonly<Config>): MappingContext {
  return { publicBaseUrl: config.publicBaseUrl, defaults: config.documentDefaults };
}

const TOO_MANY = 'GW_KOS_TOO_MANY_REFERENCES';

function errorsOf(issues: ValidationIssue[]): ValidationIssue[] {
  return issues.filter((i) => i.severity === 'error');
}

function countRefs(m: Manifest): number {
  let n = 0;
  for (const e of m.evidence) for (const s of e.series) n += s.instances.length;
  return n;
}

function tooMany(config: Readonly<Config>, n?: number): IngestError {
  return new IngestError(422, 'GW_TOO_MANY_REFERENCES', `The manifest references ${n === undefined ? 'more than ' + config.limits.maxReferences : n} instances; this gateway accepts at most ${config.limits.maxReferences} per manifest (limits.maxReferences)`, FAILURE.outOfResources);
}

/** Parse a DICOM Part 10 object: a MADO manifest, an IOCM rejection note, or a refusal. */
export function parseKos(bytes: Uint8Array, config: Readonly<Config>): ParsedKos {
  const r = readKos(bytes, { maxInflatedBytes: config.limits.maxInflatedBytes, maxReferences: config.limits.maxReferences });
  if (r.issues.some((i) => i.code === TOO_MANY)) throw tooMany(config);
  const forbidden = r.issues.filter((i) => i.code === 'GW_KOS_FORBIDDEN_CHARACTER');
  if (forbidden.length) throw new IngestError(422, 'GW_FORBIDDEN_CHARACTER', forbidden[0]!.message, FAILURE.cannotUnderstand, forbidden);
  if (r.kind === 'not-kos') {
    const notKos = r.issues.some((i) => i.code === 'GW_KOS_NOT_KOS' && /SOP Class \d/.test(i.message));
    throw notKos
      ? new IngestError(422, 'GW_NOT_A_MANIFEST', 'The DICOM object is not a Key Object Selection Document; this gateway stores MADO manifests only', FAILURE.sopClassNotSupported, errorsOf(r.issues))
      : new IngestError(422, 'GW_DICOM_UNREADABLE', 'The body is not a readable DICOM Part 10 object', FAILURE.cannotUnderstand, errorsOf(r.issues));
  }
  if (r.kind === 'rejection-note') {
    if (!r.manifest || listReferences(r.manifest).length === 0) throw new IngestError(422, 'GW_REJECTION_EMPTY', 'The rejection note references no instances', FAILURE.cannotUnderstand, errorsOf(r.issues));
    return { kind: 'rejection-note', rejection: { note: r.manifest, warnings: r.issues.filter((i) => i.severity !== 'error' || i.code === 'GW_KOS_TITLE_NOT_MANIFEST') } };
  }
  if (r.kind !== 'manifest') {
    const what = r.kind === 'key-image-note' ? 'a Key Image Note' : 'a Key Object Selection Document that is not a manifest';
    throw new IngestError(422, 'GW_NOT_A_MANIFEST', `The KOS is ${what}; only MADO manifests ("Manifest with Description") and IOCM rejection notes are accepted`, FAILURE.sopClassNotSupported, errorsOf(r.issues));
  }
  const errors = errorsOf(r.issues);
  if (!r.manifest || errors.length) throw new IngestError(422, 'GW_MANIFEST_INVALID', `The manifest is invalid: ${errors.map((e) => e.message).slice(0, 3).join('; ') || 'unreadable'}`, FAILURE.cannotUnderstand, errors);
  return { kind: 'manifest', manifest: { model: r.manifest, nativeFormat: 'kos', content: bytes, contentType: 'application/dicom', sha256: sha256Hex(bytes), warnings: r.issues } };
}

/** Parse a FHIR manifest (MadoFhirBundle, or the legacy forms fhirToManifest accepts). `json` is what the client sent. */
export function parseFhirManifest(resource: unknown, content: Uint8Array, config: Readonly<Config>): ParsedManifest {
  refuseUnstorable(resource, 'Bundle');
  const r = fhirToManifest(resource);
  const errors = errorsOf(r.issues);
  if (!r.manifest || errors.length) throw new IngestError(422, 'GW_MANIFEST_INVALID', `The FHIR manifest is invalid: ${errors.map((e) => e.message).slice(0, 3).join('; ') || 'unreadable'}`, FAILURE.cannotUnderstand, errors);
  const n = countRefs(r.manifest);
  if (n > config.limits.maxReferences) throw tooMany(config, n);
  return { model: r.manifest, nativeFormat: 'fhir', content, contentType: 'application/fhir+json', sha256: sha256Hex(content), warnings: [...r.issues, ...profileFindings(resource), ...kosFormIssues(r.manifest)] };
}

/**
 * FHIR R4 structure and MADO profile findings (src/fhir/validate.ts) of a MadoFhirBundle, as
 * warnings: the guides' own examples are partly non-conformant (missing must-support values,
 * `urn:Type/id` fullUrls) yet carry a complete manifest; what the gateway needs is checked by
 * fhirToManifest, whose errors refuse the submission. One severity per rule, for ingest and validate.
 */
function profileFindings(resource: unknown): ValidationIssue[] {
  const seen = new Set<string>();
  const out: ValidationIssue[] = [];
  for (const i of validateFhirResource(resource)) {
    const k = `${i.code}|${i.path}`;
    if (seen.has(k) || out.length >= 50) continue;
    seen.add(k);
    out.push({ ...i, severity: i.severity === 'information' ? 'information' : 'warning' });
  }
  return out;
}

/**
 * What serving this FHIR manifest as a KOS (ITI-68 Accept: application/dicom, MADO mapping
 * function SUPPL §X.6.1) maps or cannot carry: the same FHIR → KOS path ITI-68 and the CLI use,
 * run at ingest so the response says it. Warnings only: the FHIR manifest itself is valid.
 */
export function kosFormIssues(m: Manifest): ValidationIssue[] {
  const w = toKosWritable(m);
  try {
    writeKos(w.manifest);
    return w.issues;
  } catch (err) {
    if (!(err instanceof KosWriteError)) throw err;
    const why = err.issues.slice(0, 3).map((i) => `${i.path ? i.path + ': ' : ''}${i.message}`).join('; ');
    return [...w.issues, { severity: 'warning', code: 'GW_KOS_FORM_UNAVAILABLE', path: 'Bundle', message: `no DICOM KOS can be written for this manifest, so no KOS DocumentReference is published (the FHIR one is): ${why}` }];
  }
}

/** 422 before any SQL for a string PostgreSQL cannot store (U+0000, unpaired surrogates). */
export function refuseUnstorable(resource: unknown, root: string): void {
  const f = findUnstorableText(resource, root);
  if (!f) return;
  const err = new IngestError(422, 'GW_FORBIDDEN_CHARACTER', `${f.path} holds ${f.char}, which a FHIR string cannot carry`, FAILURE.cannotUnderstand);
  (err.extra as { expression?: string[] }).expression = [f.path];
  throw err;
}

function studiesOf(m: Manifest): string[] {
  return [...new Set([m.study.studyInstanceUid, ...m.evidence.map((e) => e.studyInstanceUid)].filter(Boolean))];
}

function storedOf(row: ManifestRow): StoredManifest {
  const ids = manifestResourceIds(row.sop_instance_uid);
  return {
    id: row.id,
    sopInstanceUid: row.sop_instance_uid,
    studyInstanceUid: row.study_instance_uid,
    patientId: row.patient_id ?? '',
    kosDocRefId: ids.kosDocRef,
    fhirDocRefId: ids.fhirDocRef,
    binaryId: ids.binary,
    bundleId: ids.bundle,
    referenceCount: row.reference_count,
    versionId: row.version_id,
  };
}

export interface StoreOptions {
  /** Manifest ids to supersede explicitly (ITI-65 relatesTo replaces) */
  replaces?: string[];
  submissionSetId?: string;
  /** The submitted DocumentReference's metadata (ITI-65), kept with the manifest */
  metadata?: DocRefMetadata;
}

/**
 * Store one parsed manifest inside the caller's transaction (ITI-65 stores several in one).
 * Takes the study lock itself; idempotency and supersede logic as described at the top.
 */
export async function storeManifestTx(tx: Tx, p: ParsedManifest, ctx: MappingContext, o: StoreOptions = {}): Promise<IngestResult> {
  const m = p.model;
  await lockStudies(tx, studiesOf(m));
  const found = await findSopAndCurrent(tx, m.document.sopInstanceUid, m.study.studyInstanceUid);
  return storeLockedTx(tx, p, ctx, o, found);
}

/**
 * storeManifestTx after the study locks are held: `found` is the row with this SOP Instance UID
 * and the study's current row, read under those locks.
 */
async function storeLockedTx(tx: Tx, p: ParsedManifest, ctx: MappingContext, o: StoreOptions, found: { existing?: ManifestRow; current?: ManifestRow }): Promise<IngestResult> {
  const m = p.model;
  const { existing, current } = found;
  if (existing) {
    if (existing.sha256 === p.sha256 || (await sameFhirContent(tx, existing, p, ctx))) return { outcome: 'duplicate', stored: storedOf(existing), superseded: [], warnings: p.warnings };
    throw conflict();
  }
  const toSupersede: ManifestRow[] = [];
  for (const id of o.replaces ?? []) {
    const row = await findManifestById(tx, id);
    if (!row) throw new IngestError(422, 'GW_REPLACE_TARGET_NOT_FOUND', 'The DocumentReference to be replaced does not exist', FAILURE.processingFailure);
    if (row.study_instance_uid !== m.study.studyInstanceUid) await lockStudies(tx, [row.study_instance_uid]);
    if (row.status === 'entered-in-error') throw new IngestError(409, 'GW_REPLACE_TARGET_ENTERED_IN_ERROR', 'The DocumentReference to be replaced is entered-in-error', FAILURE.processingFailure);
    if (row.status === 'current' && !toSupersede.some((x) => x.id === row.id)) toSupersede.push(row);
  }
  if (current && !toSupersede.some((x) => x.id === current.id)) toSupersede.push(current);
  // Supersede first: the partial unique index allows one current manifest per study.
  for (const row of toSupersede) await setManifestStatus(tx, row.id, 'superseded', storeRendering(ctx));
  const replaces = o.replaces?.[0] ?? current?.id;
  const replacesSop = toSupersede.find((x) => x.id === replaces)?.sop_instance_uid;
  const stored = await insertManifest(tx, { model: m, nativeFormat: p.nativeFormat, content: p.content, contentType: p.contentType, sha256: p.sha256, replaces, submissionSetId: o.submissionSetId, metadata: o.metadata, kosForm: hasKosForm(p) }, storeRendering(ctx), replacesSop);
  return { outcome: 'created', stored, superseded: toSupersede.map((r) => r.id), warnings: p.warnings };
}

/** One submission waiting for its group (see store/group-commit.ts). */
interface ManifestJob {
  p: ParsedManifest;
  o: StoreOptions;
}

/** What a group's prologue read for all its members, and what its members changed since. */
interface GroupLookup {
  bySop: Map<string, ManifestRow>;
  currentByStudy: Map<string, ManifestRow>;
  /** SOP Instance UIDs and study UIDs an earlier member of the group wrote: read again under the lock */
  touched: Set<string>;
}

/**
 * Group commit of manifest submissions (decisions.md D120–D123): the prologue takes every member's
 * study locks (sorted, one statement) and reads every member's SOP row and study current row (one
 * statement); a member reads again only what an earlier member of its group changed.
 */
function manifestGroupRunner(db: Db, ctx: MappingContext): GroupRunner<ManifestJob, IngestResult, GroupLookup> {
  return {
    async prologue(tx, jobs) {
      // Sent back to back on the group's connection: the lookup starts (and takes its snapshot)
      // only after the lock statement has returned, without a round trip in between.
      const [, rows] = await Promise.all([
        lockStudies(tx, jobs.flatMap((j) => studiesOf(j.p.model))),
        findSopsAndCurrent(tx, jobs.map((j) => j.p.model.document.sopInstanceUid), jobs.map((j) => j.p.model.study.studyInstanceUid)),
      ]);
      const look: GroupLookup = { bySop: new Map(), currentByStudy: new Map(), touched: new Set() };
      for (const r of rows) {
        look.bySop.set(r.sop_instance_uid, r);
        if (r.status === 'current') look.currentByStudy.set(r.study_instance_uid, r);
      }
      return look;
    },
    async member(tx, { p, o }, look) {
      const m = p.model;
      const sop = m.document.sopInstanceUid, study = m.study.studyInstanceUid;
      const found = look.touched.has(sop) || look.touched.has(study) ? await findSopAndCurrent(tx, sop, study) : { existing: look.bySop.get(sop), current: look.currentByStudy.get(study) };
      const r = await storeLockedTx(tx, p, ctx, o, found);
      for (const k of [sop, ...studiesOf(m)]) look.touched.add(k);
      return r;
    },
    alone: ({ p, o }) => submitAlone(db, p, ctx, o),
  };
}

/** One submission in its own transaction (group commit off, and the retry path). */
async function submitAlone(db: Db, p: ParsedManifest, ctx: MappingContext, o: StoreOptions): Promise<IngestResult> {
  // Manifest rows are never deleted and their content never changes, so a re-submission of a
  // stored SOP Instance UID with the same bytes (bulk re-imports) or other bytes (409) is answered
  // from one lookup, without a transaction or the study lock.
  const seen = await findManifestBySop(db, p.model.document.sopInstanceUid);
  if (seen && seen.sha256 === p.sha256) return { outcome: 'duplicate', stored: storedOf(seen), superseded: [], warnings: p.warnings };
  if (seen && (seen.native_format !== 'fhir' || p.nativeFormat !== 'fhir')) throw conflict();
  return runInTransaction(db, (tx) => storeManifestTx(tx, p, ctx, o));
}

/** One group committer per database handle, shared by every route's IngestService. */
const groups = new WeakMap<Db, GroupCommit<ManifestJob, IngestResult, GroupLookup>>();

/** Group commit figures of a database handle (undefined before its first grouped submission). */
export function groupCommitStats(db: Db): GroupCommitStats | undefined {
  return groups.get(db)?.stats;
}

function conflict(): IngestError {
  return new IngestError(409, 'GW_MANIFEST_CONFLICT', 'A manifest with this SOP Instance UID is already stored with different content; a changed manifest needs a new SOP Instance UID', FAILURE.duplicateSopInstance);
}

/** A FHIR-native manifest the KOS writer cannot express has no KOS form (its KOS DocumentReference is withheld). */
function hasKosForm(p: ParsedManifest): boolean {
  return p.nativeFormat === 'kos' || !p.warnings.some((w) => w.code === 'GW_KOS_FORM_UNAVAILABLE');
}

/** Keys sorted, so two serialisations of one resource compare equal (JSON has no key order). */
function canonical(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(canonical);
  if (typeof x !== 'object' || x === null) return x;
  return Object.fromEntries(Object.keys(x).sort().map((k) => [k, canonical((x as Record<string, unknown>)[k])]));
}

/**
 * A FHIR manifest is the same document when its content is the same FHIR content, whatever the
 * serialisation (JSON key order, whitespace, the gateway's own XML rendering); the WADO-RS Endpoint
 * addresses the gateway serves in place of the archive's count as the stored ones.
 */
async function sameFhirContent(tx: Tx, existing: ManifestRow, p: ParsedManifest, ctx: MappingContext): Promise<boolean> {
  if (existing.native_format !== 'fhir' || p.nativeFormat !== 'fhir') return false;
  const stored = await loadContent(tx, existing.id);
  if (!stored) return false;
  let a: Record<string, any>;
  let b: Record<string, any>;
  try {
    a = JSON.parse(stored.toString('utf8'));
    b = JSON.parse(Buffer.from(p.content).toString('utf8'));
  } catch {
    return false;
  }
  const gw = `${ctx.publicBaseUrl.replace(/\/+$/, '')}/dicomweb`;
  const storedEps = new Map<string, Record<string, any>>((a.entry ?? []).map((e: Record<string, any>) => [e?.fullUrl, e?.resource]));
  for (const e of b.entry ?? []) {
    const r = e?.resource;
    const was = storedEps.get(e?.fullUrl);
    if (r?.resourceType === 'Endpoint' && r.address === gw && was?.resourceType === 'Endpoint') e.resource = { ...r, address: was.address, ...(was._address ? { _address: was._address } : {}), ...(was.name !== undefined ? { name: was.name } : {}) };
  }
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

export class IngestService {
  readonly ctx: MappingContext;
  constructor(private readonly deps: IngestDeps) {
    this.ctx = mappingContext(deps.config);
  }

  get config(): Readonly<Config> {
    return this.deps.config;
  }

  /**
   * Store one manifest: committed together with the submissions that arrive meanwhile (group
   * commit), each in its own savepoint; ingest.groupCommitMax = 1 gives each its own transaction.
   */
  async submitManifest(p: ParsedManifest, o: StoreOptions = {}): Promise<IngestResult> {
    const { db, config } = this.deps;
    const max = config.ingest?.groupCommitMax ?? 32;
    if (max <= 1) return submitAlone(db, p, this.ctx, o);
    let g = groups.get(db);
    if (!g) {
      g = new GroupCommit(db, manifestGroupRunner(db, this.ctx), { maxMembers: max, maxInFlight: config.ingest?.groupsInFlight ?? 4 });
      groups.set(db, g);
    }
    return g.submit({ p, o });
  }

  /** A KOS from any path: manifest → stored, rejection note → applied. */
  async submitKos(bytes: Uint8Array): Promise<{ kind: 'manifest'; result: IngestResult } | { kind: 'rejection-note'; result: RejectionResult; note: Manifest }> {
    const parsed = parseKos(bytes, this.deps.config);
    if (parsed.kind === 'manifest') return { kind: 'manifest', result: await this.submitManifest(parsed.manifest) };
    return { kind: 'rejection-note', result: await this.applyRejection(parsed.rejection), note: parsed.rejection.note };
  }

  /** Apply an IOCM rejection note (see the lifecycle notes at the top). */
  async applyRejection(r: ParsedRejection): Promise<RejectionResult> {
    return runInTransaction(this.deps.db, (tx) => applyRejectionTx(tx, r, this.ctx, this.deps.config));
  }

  /**
   * FHIR status update of a DocumentReference (PATCH/PUT): entered-in-error from any status,
   * superseded from current. Returns the re-rendered DocumentReference.
   */
  async updateStatus(docRefId: string, status: ManifestStatus, ifMatchVersion?: number): Promise<{ resource: Record<string, unknown>; changed: boolean; manifest: ManifestRow }> {
    const found = await findManifestByDocRef(this.deps.db, docRefId);
    if (!found) throw new GatewayError(404, 'GW_NOT_FOUND', 'DocumentReference not found');
    return runInTransaction(this.deps.db, async (tx) => {
      await lockStudies(tx, [found.manifest.study_instance_uid]);
      const row = (await findManifestById(tx, found.manifest.id, true))!;
      if (ifMatchVersion !== undefined && ifMatchVersion !== row.version_id) {
        throw new GatewayError(412, 'GW_VERSION_CONFLICT', `If-Match version ${ifMatchVersion} does not match the current version ${row.version_id}`);
      }
      let changed = false;
      let after = row;
      if (row.status !== status) {
        if (status === 'current') throw new GatewayError(422, 'GW_STATUS_TRANSITION', `A ${row.status} DocumentReference cannot be made current again; submit a new manifest`);
        if (status === 'superseded' && row.status !== 'current') throw new GatewayError(422, 'GW_STATUS_TRANSITION', `A ${row.status} DocumentReference cannot become superseded`);
        after = await setManifestStatus(tx, row.id, status, storeRendering(this.ctx));
        changed = true;
      }
      return { resource: (await loadDocRef(tx, docRefId))!, changed, manifest: after };
    });
  }
}

/** Date/time "now" in the manifest's timezone offset (the offset applies to every DA/TM of a KOS). */
function nowIn(offset: string): { date: string; time: string } {
  const sign = offset.startsWith('-') ? -1 : 1;
  const mins = sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
  const d = new Date(Date.now() + mins * 60_000).toISOString();
  return { date: d.slice(0, 10).replace(/-/g, ''), time: d.slice(11, 19).replace(/:/g, '') };
}

/** The manifest without the rejected instances (empty series / studies dropped), or undefined when nothing remains. */
export function withoutInstances(m: Manifest, rejected: Set<string>, newSop: string, defaultTz: string): Manifest | undefined {
  const n = structuredClone(m);
  let removedSeries = 0;
  n.evidence = n.evidence
    .map((e) => {
      e.series = e.series
        .map((s) => {
          const before = s.instances.length;
          s.instances = s.instances.filter((i) => !rejected.has(i.sopInstanceUid));
          const removed = before - s.instances.length;
          if (removed && s.numberOfInstances !== undefined) s.numberOfInstances = Math.max(s.instances.length, s.numberOfInstances - removed);
          return s;
        })
        .filter((s) => {
          if (s.instances.length) return true;
          removedSeries++;
          return false;
        });
      return e;
    })
    .filter((e) => e.series.length > 0);
  if (!n.evidence.length) return undefined;
  if (removedSeries && n.study.numberOfSeries !== undefined) n.study.numberOfSeries = Math.max(1, n.study.numberOfSeries - removedSeries);
  n.document.sopInstanceUid = newSop;
  const tz = n.document.timezoneOffset ?? defaultTz;
  n.document.timezoneOffset = tz;
  const now = nowIn(tz);
  n.document.contentDate = now.date;
  n.document.contentTime = now.time;
  return n;
}

/** Encode a re-versioned manifest in the original's native form (KOS, or FHIR when a KOS cannot carry it). */
function encodeVersion(m: Manifest, native: NativeFormat, ctx: MappingContext, config: Readonly<Config>): ParsedManifest {
  if (native === 'kos') {
    try {
      const bytes = writeKos(toKosWritable(m).manifest);
      const re = readKos(bytes, { maxInflatedBytes: config.limits.maxInflatedBytes, maxReferences: config.limits.maxReferences });
      if (re.manifest && re.kind === 'manifest') return { model: re.manifest, nativeFormat: 'kos', content: bytes, contentType: 'application/dicom', sha256: sha256Hex(bytes), warnings: [] };
    } catch (e) {
      if (!(e instanceof KosWriteError)) throw e;
    }
  }
  const bundle = manifestToFhirBundle(m, ctx);
  const content = Buffer.from(JSON.stringify(bundle), 'utf8');
  const back = fhirToManifest(bundle).manifest ?? m;
  return { model: back, nativeFormat: 'fhir', content, contentType: 'application/fhir+json', sha256: sha256Hex(content), warnings: kosFormIssues(back) };
}

export async function applyRejectionTx(tx: Tx, r: ParsedRejection, ctx: MappingContext, config: Readonly<Config>): Promise<RejectionResult> {
  const refs = listReferences(r.note);
  const noteStudies = [...new Set(refs.map((x) => x.study))];
  await lockStudies(tx, noteStudies);
  const reason: Code | undefined = r.note.document.title?.value ? r.note.document.title : undefined;
  const rejected = await recordRejections(
    tx,
    refs.map((x) => ({ sopInstanceUid: x.instance.sopInstanceUid, studyInstanceUid: x.study, seriesInstanceUid: x.series.uid })),
    r.note.document.sopInstanceUid,
    reason,
  );
  const affected = await currentManifestsReferencing(tx, refs.map((x) => ({ series: x.series.uid, sop: x.instance.sopInstanceUid })));
  const extra = affected.map((a) => a.study_instance_uid).filter((s) => !noteStudies.includes(s));
  if (extra.length) await lockStudies(tx, extra);
  const superseded: string[] = [];
  const created: StoredManifest[] = [];
  for (const a of affected) {
    const model = await loadModel(tx, a.id);
    const rej = await rejectedAmong(tx, listReferences(model).map((x) => x.instance.sopInstanceUid));
    await setManifestStatus(tx, a.id, 'superseded', storeRendering(ctx));
    superseded.push(a.id);
    const newSop = derivedUid(`mado-gateway:iocm:${a.sop_instance_uid}:${r.note.document.sopInstanceUid}`);
    const next = withoutInstances(model, rej, newSop, ctx.defaults.defaultTimezoneOffset);
    if (!next) continue;
    if (await findManifestBySop(tx, newSop)) continue;
    const enc = encodeVersion(next, a.native_format, ctx, config);
    // The source's metadata (security labels included) carries over to the new version.
    const metadata = (await loadDocRefMetadata(tx, a.id)) ?? undefined;
    created.push(await insertManifest(tx, { model: enc.model, nativeFormat: enc.nativeFormat, content: enc.content, contentType: enc.contentType, sha256: enc.sha256, replaces: a.id, metadata, kosForm: hasKosForm(enc) }, storeRendering(ctx)));
  }
  return { rejected, superseded, created, warnings: r.warnings };
}
