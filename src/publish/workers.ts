/**
 * A small pool of publish worker threads (worker.ts): each study's metadata reading, JSON parsing
 * and KOS writing runs in the least busy worker, so a publish costs the main thread little more
 * than storing the manifest (decisions.md D143). Workers are spawned on first use; an idle one is
 * unref'd (an idle pool never keeps the process alive); a worker that dies fails only its own jobs.
 */
import { Worker } from 'node:worker_threads';
import { KosWriteError } from '../dicom/index.js';
import { GatewayError } from '../http/errors.js';
import type { ValidationIssue } from '../model/manifest.js';
import { PublishRefusal } from './build.js';
import type { ComposedKos } from './compose.js';
import type { WorkerJob } from './worker.js';

/** An error thrown in a worker, as it crosses to the main thread. */
export type WorkerError =
  | { kind: 'refusal'; code: string; message: string }
  | { kind: 'kos'; message: string; issues: ValidationIssue[] }
  | { kind: 'gateway'; status: number; code: string; message: string }
  | { kind: 'other'; message: string };

type Reply = { id: number; bytes: Uint8Array; instances: number; error?: undefined } | { id: number; error: WorkerError };

interface Slot {
  worker: Worker;
  jobs: Set<number>;
}

interface Pending {
  slot: Slot;
  resolve: (r: ComposedKos) => void;
  reject: (e: Error) => void;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCES ? './worker.ts' : './worker.js', import.meta.url);

/** The built worker; from the TypeScript sources (tsx, in development and tests) tsx's loader is registered in the thread first. */
function newWorker(): Worker {
  if (!FROM_SOURCES) return new Worker(WORKER_URL);
  const api = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`, { eval: true });
}

function workerErrorToError(e: WorkerError): Error {
  switch (e.kind) {
    case 'refusal':
      return new PublishRefusal(e.code, e.message);
    case 'kos':
      return new KosWriteError(e.issues);
    case 'gateway':
      return new GatewayError(e.status, e.code, e.message);
    default:
      return new Error(e.message);
  }
}

export class PublishWorkers {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(readonly size: number) {}

  private spawn(): Slot {
    const slot: Slot = { worker: newWorker(), jobs: new Set() };
    slot.worker.on('message', (m: Reply) => this.settle(m));
    const fail = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const id of slot.jobs) {
        this.pending.get(id)?.reject(err);
        this.pending.delete(id);
      }
      slot.jobs.clear();
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => fail(new Error(`publish worker exited (${code})`)));
    slot.worker.unref(); // idle; after the listeners (adding a 'message' listener refs it again)
    this.slots.push(slot);
    return slot;
  }

  /** An idle worker, else a new one while below size, else the least busy. */
  private pick(): Slot {
    const idle = this.slots.find((s) => s.jobs.size === 0);
    if (idle) return idle;
    if (this.slots.length < this.size) return this.spawn();
    return this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  run(job: Omit<WorkerJob, 'id'>, signal?: AbortSignal): Promise<ComposedKos> {
    const slot = this.pick();
    const id = this.nextId++;
    return new Promise<ComposedKos>((resolve, reject) => {
      const onAbort = () => slot.worker.postMessage({ cancel: id });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, { slot, resolve: (r) => (done(), resolve(r)), reject: (e) => (done(), reject(e)) });
      if (slot.jobs.size === 0) slot.worker.ref(); // a job in flight keeps the process alive
      slot.jobs.add(id);
      slot.worker.postMessage({ id, ...job } satisfies WorkerJob);
    });
  }

  private settle(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    p.slot.jobs.delete(m.id);
    if (p.slot.jobs.size === 0) p.slot.worker.unref();
    if (m.error) p.reject(workerErrorToError(m.error));
    else p.resolve({ bytes: m.bytes, instances: m.instances });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
