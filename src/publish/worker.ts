/**
 * Publish worker thread: reads a study's metadata from its upstream and writes the KOS
 * (compose.ts), so JSON parsing and KOS writing — most of a publish's CPU — run beside the main
 * thread, which keeps serving requests and storing manifests (decisions.md D143). Messages:
 * in `{ id, upstream, read, options }` or `{ cancel: id }`; out `{ id, bytes, instances }` or
 * `{ id, error }` (see workers.ts for the error shape).
 */
import { parentPort } from 'node:worker_threads';
import type { UpstreamConfig } from '../config.js';
import { KosWriteError } from '../dicom/index.js';
import { Upstream } from '../dicomweb/upstream.js';
import { GatewayError } from '../http/errors.js';
import { PublishRefusal, type BuildOptions } from './build.js';
import { composeKos, type StudyRead } from './compose.js';
import { DicomwebSource } from './source.js';
import type { WorkerError } from './workers.js';

export interface WorkerJob {
  id: number;
  upstream: UpstreamConfig;
  read: StudyRead;
  options: BuildOptions;
}

/** One Upstream (connection pool, cached token) per upstream configuration. */
const upstreams = new Map<string, Upstream>();
const running = new Map<number, AbortController>();

function upstreamOf(config: UpstreamConfig): Upstream {
  const key = JSON.stringify(config);
  let u = upstreams.get(key);
  if (!u) upstreams.set(key, (u = new Upstream(config)));
  return u;
}

function describe(err: unknown): WorkerError {
  if (err instanceof PublishRefusal) return { kind: 'refusal', code: err.code, message: err.message };
  if (err instanceof KosWriteError) return { kind: 'kos', message: err.message, issues: err.issues };
  if (err instanceof GatewayError) return { kind: 'gateway', status: err.status, code: err.code, message: err.message };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

async function run(job: WorkerJob): Promise<void> {
  const ac = new AbortController();
  running.set(job.id, ac);
  try {
    const r = await composeKos(new DicomwebSource(upstreamOf(job.upstream), ac.signal), job.read, job.options);
    const bytes = new Uint8Array(r.bytes); // its own buffer, handed over without a copy
    parentPort!.postMessage({ id: job.id, bytes, instances: r.instances }, [bytes.buffer]);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: describe(err) });
  } finally {
    running.delete(job.id);
  }
}

parentPort?.on('message', (m: WorkerJob | { cancel: number }) => {
  if ('cancel' in m) running.get(m.cancel)?.abort();
  else void run(m);
});
