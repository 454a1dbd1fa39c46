/**
 * Forwarding a published manifest to MHD Document Recipients as an ITI-65 Provide Document Bundle
 * (transaction: SubmissionSet List, the KOS DocumentReference, the KOS as Binary). A recipient that
 * fails is retried with doubling back-off; when the attempts of one round are used up the delivery
 * is recorded as pending in PostgreSQL and retried in the background until it succeeds. The local
 * manifest is committed before any forwarding starts, so a recipient can never cost it.
 */
import { randomUUID } from 'node:crypto';
import type { RecipientConfig } from '../config.js';
import { newUid } from '../dicom/uid.js';
import type { Logger } from '../log.js';
import type { Db } from '../store/db.js';
import { manifestResourceIds } from '../model/ids.js';
import { loadDocRef } from '../store/manifests.js';
import { manifestContent, recordDelivery, withDueDelivery } from '../store/publish-state.js';

export interface ForwardReport {
  recipient: string;
  status: 'delivered' | 'pending';
  attempts: number;
  error?: string;
}

export interface ForwardItem {
  manifestId: string;
  kosDocRefId: string;
  content: Uint8Array;
}

const MHD = 'https://profiles.ihe.net/ITI/MHD';

/** The ITI-65 transaction Bundle for one stored KOS manifest (MHD Minimal Provide Bundle). */
export function provideBundle(docRef: Record<string, unknown>, content: Uint8Array, sourceId: string): Record<string, unknown> {
  const docUrl = `urn:uuid:${randomUUID()}`;
  const binUrl = `urn:uuid:${randomUUID()}`;
  const dr: Record<string, any> = structuredClone(docRef);
  delete dr.id;
  delete dr.meta;
  delete dr.relatesTo; // relations name this gateway's resources, unknown to the recipient
  delete dr.subject; // the recipient derives the patient from the KOS
  dr.status = 'current';
  const attachment = { ...(dr.content?.[0]?.attachment ?? {}), contentType: 'application/dicom', url: binUrl };
  dr.content = [{ ...(dr.content?.[0] ?? {}), attachment }];
  const list = {
    resourceType: 'List', status: 'current', mode: 'working', date: new Date().toISOString(),
    code: { coding: [{ system: `${MHD}/CodeSystem/MHDlistTypes`, code: 'submissionset' }] },
    identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: `urn:oid:${newUid()}` }],
    extension: [{ url: `${MHD}/StructureDefinition/ihe-sourceId`, valueIdentifier: { value: sourceId } }],
    entry: [{ item: { reference: docUrl } }],
  };
  return {
    resourceType: 'Bundle', meta: { profile: [`${MHD}/StructureDefinition/IHE.MHD.Minimal.ProvideBundle`] }, type: 'transaction',
    entry: [
      { fullUrl: `urn:uuid:${randomUUID()}`, resource: list, request: { method: 'POST', url: 'List' } },
      { fullUrl: docUrl, resource: dr, request: { method: 'POST', url: 'DocumentReference' } },
      { fullUrl: binUrl, resource: { resourceType: 'Binary', contentType: 'application/dicom', data: Buffer.from(content).toString('base64') }, request: { method: 'POST', url: 'Binary' } },
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Forwarder {
  private tokens = new Map<string, { token: string; expiresAt: number }>();
  constructor(private readonly db: Db, private readonly recipients: readonly RecipientConfig[], private readonly sourceId: string, private readonly log: Logger) {}

  get enabled(): boolean {
    return this.recipients.length > 0;
  }

  private async authorization(r: RecipientConfig): Promise<string | undefined> {
    const a = r.auth;
    if (a.type === 'none') return undefined;
    if (a.type === 'basic') return 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64');
    if (a.type === 'bearer') return 'Bearer ' + a.token;
    const cached = this.tokens.get(r.name);
    if (cached && cached.expiresAt > Date.now()) return 'Bearer ' + cached.token;
    const form = new URLSearchParams({ grant_type: 'client_credentials', ...(a.scope ? { scope: a.scope } : {}) });
    const res = await fetch(a.tokenUrl, {
      method: 'POST', body: form, signal: AbortSignal.timeout(r.timeoutMs),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(a.clientId)}:${encodeURIComponent(a.clientSecret)}`).toString('base64') },
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number };
    if (!res.ok || typeof body.access_token !== 'string') throw new Error(`token endpoint answered ${res.status}`);
    this.tokens.set(r.name, { token: body.access_token, expiresAt: Date.now() + Math.max(1, (body.expires_in ?? 300) - 30) * 1000 });
    return 'Bearer ' + body.access_token;
  }

  /** One POST of the bundle; resolves on 2xx, throws with the reason otherwise. */
  private async post(r: RecipientConfig, bundle: Record<string, unknown>): Promise<void> {
    const auth = await this.authorization(r);
    const res = await fetch(r.url, {
      method: 'POST', body: JSON.stringify(bundle), signal: AbortSignal.timeout(r.timeoutMs),
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...(auth ? { authorization: auth } : {}) },
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`recipient answered ${res.status}`);
  }

  /** Up to `retries` attempts with doubling back-off. */
  private async attempt(r: RecipientConfig, bundle: Record<string, unknown>): Promise<{ ok: boolean; attempts: number; error?: string }> {
    let error = '';
    for (let i = 0; i < r.retries; i++) {
      if (i) await sleep(r.backoffMs * 2 ** (i - 1));
      try {
        await this.post(r, bundle);
        return { ok: true, attempts: i + 1 };
      } catch (err) {
        error = (err as Error)?.name === 'TimeoutError' ? 'recipient timed out' : (err as Error)?.message?.startsWith('recipient') ? (err as Error).message : 'recipient unreachable';
      }
    }
    return { ok: false, attempts: r.retries, error };
  }

  /** Forward one stored manifest to every recipient; failures are kept for the background retry. */
  async forward(item: ForwardItem): Promise<ForwardReport[]> {
    if (!this.enabled) return [];
    const docRef = await loadDocRef(this.db, item.kosDocRefId);
    if (!docRef) return [];
    const bundle = provideBundle(docRef, item.content, this.sourceId);
    return Promise.all(this.recipients.map(async (r) => {
      const res = await this.attempt(r, bundle);
      await recordDelivery(this.db, item.manifestId, r.name, res.ok ? 'delivered' : 'pending', res.attempts, res.error, r.backoffMs / 1000);
      if (!res.ok) this.log.warn({ recipient: r.name, attempts: res.attempts, error: res.error }, 'forwarding a published manifest failed; will retry');
      return { recipient: r.name, status: res.ok ? 'delivered' as const : 'pending' as const, attempts: res.attempts, ...(res.error ? { error: res.error } : {}) };
    }));
  }

  /** Retry due pending deliveries (any replica; each claimed by one). Returns how many were tried. */
  async retryDue(max = 20): Promise<number> {
    let n = 0;
    while (n < max) {
      const did = await withDueDelivery(this.db, async (d) => {
        const r = this.recipients.find((x) => x.name === d.recipient);
        const stored = await manifestContent(this.db, d.manifestId);
        const docRef = stored && (await loadDocRef(this.db, manifestResourceIds(stored.sopInstanceUid).kosDocRef));
        if (!r || !stored || !docRef) return { delivered: false, error: 'recipient no longer configured or manifest gone', attempts: 0, retryInSec: 3600 };
        const res = await this.attempt(r, provideBundle(docRef, stored.content, this.sourceId));
        if (res.ok) this.log.info({ recipient: r.name, attempts: d.attempts + res.attempts }, 'pending forward delivered');
        // one more round of `retries` attempts each time; rounds back off doubling, at most a minute apart
        const rounds = Math.floor((d.attempts + res.attempts) / r.retries);
        const backoff = Math.min(60, (r.backoffMs / 1000) * 2 ** Math.min(rounds, 16));
        return { delivered: res.ok, error: res.error, attempts: res.attempts, retryInSec: backoff };
      });
      if (!did) break;
      n++;
    }
    return n;
  }
}
