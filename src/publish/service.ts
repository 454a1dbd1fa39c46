/**
 * The content creator (MADO Imaging Manifest Creator): for one study of an upstream archive, read
 * it through DICOMweb (source.ts), build the MADO manifest (build.ts), write it as a KOS with the
 * gateway's one KOS writer, and store it through the ingest service's own parse + store path
 * (same validation, same transaction and study lock, same supersede rule).
 *
 * "Unchanged" is decided inside the ingest transaction under the study lock: when the study's
 * current manifest says the same thing (publicationKey: patient, study, every series and instance)
 * nothing is stored and the current manifest is answered. Racing replicas therefore store a study
 * once. The Retrieve URL written is the gateway's public WADO-RS base (consumers come through the
 * gateway); the Retrieve Location UID names the upstream, which is how the WADO-RS proxy routes.
 */
import type { Config } from '../config.js';
import { derivedUid, KosWriteError } from '../dicom/index.js';
import { locationUidOf, UpstreamRegistry, type Upstream } from '../dicomweb/upstream.js';
import { GatewayError } from '../http/errors.js';
import { IngestError, mappingContext, parseKos, storeManifestTx, FAILURE, type ParsedManifest } from '../ingest/service.js';
import type { Logger } from '../log.js';
import { manifestResourceIds } from '../model/ids.js';
import type { ValidationIssue } from '../model/manifest.js';
import type { Db } from '../store/db.js';
import { findCurrentForStudy, loadModel, lockStudies, runInTransaction, type StoredManifest } from '../store/manifests.js';
import { currentWithFingerprint, recordFingerprint, type CurrentManifest } from '../store/publish-state.js';
import { publicationKey, PublishRefusal, type BuildOptions } from './build.js';
import { composeKos, type ComposedKos, type StudyRead } from './compose.js';
import { countsKnown, studyFingerprint } from './fingerprint.js';
import { Forwarder, type ForwardReport } from './forward.js';
import { DicomwebSource } from './source.js';
import { PublishWorkers } from './workers.js';

export interface PublishResult {
  outcome: 'created' | 'replaced' | 'unchanged';
  studyInstanceUid: string;
  upstream: string;
  stored: StoredManifest;
  superseded: string[];
  /** Instances referenced by the manifest */
  instances: number;
  warnings: ValidationIssue[];
  forwarded: ForwardReport[];
}

export interface PublisherDeps {
  db: Db;
  config: Readonly<Config>;
  log: Logger;
  registry: UpstreamRegistry;
}

function storedOf(row: CurrentManifest): StoredManifest {
  const ids = manifestResourceIds(row.sop_instance_uid);
  return {
    id: row.id, sopInstanceUid: row.sop_instance_uid, studyInstanceUid: row.study_instance_uid, patientId: row.patient_id ?? '',
    kosDocRefId: ids.kosDocRef, fhirDocRefId: ids.fhirDocRef, binaryId: ids.binary, bundleId: ids.bundle, referenceCount: row.reference_count, versionId: row.version_id,
  };
}

export class Publisher {
  readonly forwarder: Forwarder;
  /** Threads that read metadata and write KOS (none: the main thread does) */
  private readonly workers?: PublishWorkers;
  constructor(private readonly deps: PublisherDeps) {
    if (deps.config.publish.workers > 0) this.workers = new PublishWorkers(deps.config.publish.workers);
    // Submission Set source id (MHD ihe-sourceId): an OID stable for this gateway's public address
    this.forwarder = new Forwarder(deps.db, deps.config.publish.recipients, `urn:oid:${derivedUid(`mado-gateway:source:${deps.config.publicBaseUrl}`)}`, deps.log);
  }

  /** The named upstream, else the watch upstream, else the default (DICOMWEB_UPSTREAM_URL), else the only one. */
  upstream(name?: string): Upstream {
    const reg = this.deps.registry;
    if (name) {
      const u = reg.byName(name);
      if (!u) throw new GatewayError(422, 'GW_PUBLISH_UNKNOWN_UPSTREAM', `"${name}" is not a configured upstream`);
      return u;
    }
    const watch = this.deps.config.publish.watch?.upstream;
    const u = (watch && reg.byName(watch)) || reg.byName('default') || (reg.upstreams.length === 1 ? reg.upstreams[0] : undefined);
    if (!u) throw new GatewayError(422, 'GW_PUBLISH_NO_UPSTREAM', reg.upstreams.length ? 'Several upstreams are configured: name one (parameter "upstream")' : 'No upstream is configured (DICOMWEB_UPSTREAM_URL or upstreams in GATEWAY_CONFIG)');
    return u;
  }

  /** The settings a manifest from `up` is built with (they are part of its fingerprint). */
  private buildOptions(up: Upstream): BuildOptions {
    const { config } = this.deps;
    const o: BuildOptions = {
      retrieveUrl: `${config.publicBaseUrl.replace(/\/+$/, '')}/dicomweb`,
      retrieveLocationUid: locationUidOf(up.config),
      title: config.documentDefaults.kosTitle,
      defaultTimezoneOffset: config.documentDefaults.defaultTimezoneOffset,
      manufacturer: 'mado-gateway',
    };
    if (up.config.patientIdIssuer) o.patientIdIssuer = up.config.patientIdIssuer;
    if (config.publish.institutionName) o.institutionName = config.publish.institutionName;
    return o;
  }

  /** Read every series' instance metadata and write the manifest as a KOS (in a worker when there are any). */
  private async manifestBytes(src: DicomwebSource, up: Upstream, read: StudyRead, options: BuildOptions, signal?: AbortSignal): Promise<ComposedKos> {
    try {
      if (this.workers) return await this.workers.run({ upstream: up.config, read, options }, signal);
      return await composeKos(src, read, options);
    } catch (err) {
      if (err instanceof PublishRefusal) throw new IngestError(422, err.code, err.message, FAILURE.processingFailure);
      if (err instanceof KosWriteError) throw new IngestError(422, 'GW_PUBLISH_INVALID_MANIFEST', 'The study cannot make a valid manifest', FAILURE.processingFailure, err.issues);
      throw err;
    }
  }

  /**
   * Build, validate and store the manifest of one study; forward it when new. A study whose
   * QIDO-RS fingerprint equals the one its current manifest was published with is unchanged
   * without reading its metadata (decisions.md D140); otherwise the manifest is built and compared
   * with the current one under the study lock.
   */
  async publish(studyUid: string, upstreamName?: string, signal?: AbortSignal): Promise<PublishResult> {
    const up = this.upstream(upstreamName);
    const src = new DicomwebSource(up, signal);
    const study = await src.study(studyUid);
    if (!study) throw new GatewayError(404, 'GW_PUBLISH_STUDY_NOT_FOUND', `Upstream "${up.name}" has no study with this Study Instance UID`);
    const read: StudyRead = { studyUid, study, series: await src.series(studyUid) };
    const options = this.buildOptions(up);
    const fingerprint = countsKnown(read.series) ? studyFingerprint(up.name, options, read.study, read.series) : undefined;
    if (fingerprint) {
      const cur = await currentWithFingerprint(this.deps.db, studyUid, up.name);
      if (cur?.fingerprint === fingerprint) {
        return { outcome: 'unchanged', stored: storedOf(cur.manifest), superseded: [], studyInstanceUid: studyUid, upstream: up.name, instances: cur.manifest.reference_count, warnings: [], forwarded: [] };
      }
    }
    const built = await this.manifestBytes(src, up, read, options, signal);
    const parsed = parseKos(built.bytes, this.deps.config);
    if (parsed.kind !== 'manifest') throw new IngestError(422, 'GW_PUBLISH_INVALID_MANIFEST', 'The study cannot make a valid manifest', FAILURE.processingFailure);
    const p = parsed.manifest;
    const r = await this.store(p, studyUid, fingerprint ? { upstream: up.name, fingerprint } : undefined);
    const forwarded = r.outcome === 'unchanged' ? [] : await this.forwarder.forward({ manifestId: r.stored.id, kosDocRefId: r.stored.kosDocRefId, content: p.content });
    return { ...r, studyInstanceUid: studyUid, upstream: up.name, instances: built.instances, warnings: p.warnings.filter((w) => w.severity !== 'error'), forwarded };
  }

  /** Store the manifest unless the study's current one says the same (ingest transaction, study lock). */
  private async store(p: ParsedManifest, studyUid: string, fp: { upstream: string; fingerprint: string } | undefined) {
    const ctx = mappingContext(this.deps.config);
    const key = publicationKey(p.model); // outside the study lock: it serialises the whole study
    return runInTransaction(this.deps.db, async (tx) => {
      await lockStudies(tx, [studyUid]);
      const current = await findCurrentForStudy(tx, studyUid);
      if (current && publicationKey(await loadModel(tx, current.id)) === key) {
        if (fp) await recordFingerprint(tx, current.id, fp.upstream, fp.fingerprint);
        return { outcome: 'unchanged' as const, stored: storedOf(current), superseded: [] as string[] };
      }
      const res = await storeManifestTx(tx, p, ctx);
      if (fp) await recordFingerprint(tx, res.stored.id, fp.upstream, fp.fingerprint);
      return { outcome: res.superseded.length ? ('replaced' as const) : ('created' as const), stored: res.stored, superseded: res.superseded };
    });
  }

  /** Study Instance UIDs in the upstream, optionally from a StudyDate on (for the CLI's --since / --all). */
  async list(upstreamName: string | undefined, since?: string): Promise<string[]> {
    const src = new DicomwebSource(this.upstream(upstreamName));
    const out: string[] = [];
    for await (const s of src.studies({ from: since })) {
      const uid = s['0020000D']?.Value?.[0];
      if (typeof uid === 'string') out.push(uid);
    }
    return out;
  }
}

const publishers = new WeakMap<object, Publisher>();

/** One Publisher per configuration (routes, watch mode and forwarding retries share it). */
export function publisherFor(deps: Omit<PublisherDeps, 'registry'> & { registry?: UpstreamRegistry }): Publisher {
  let p = publishers.get(deps.config);
  if (!p) {
    p = new Publisher({ ...deps, registry: deps.registry ?? new UpstreamRegistry(deps.config.upstreams) });
    publishers.set(deps.config, p);
  }
  return p;
}
