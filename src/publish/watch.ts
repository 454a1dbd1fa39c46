/**
 * Watch mode (publish.watch) and the background retry of forwards, run by every replica.
 *
 * Each poll asks the upstream's QIDO-RS for the studies of a moving StudyDate window (from the
 * high-water mark, at most lookbackDays back from today, to any later date) with their Number of
 * Study Related Instances, and records the counts in PostgreSQL. A study whose count has not
 * changed for stableAfterSec and that is not published at that count is ready: replicas claim ready
 * studies with FOR UPDATE SKIP LOCKED (store/publish-state.ts), so one replica publishes a study
 * at a time, and a replica killed mid-publish releases its claim with its connection. The high-water
 * mark moves forward to the window start, never past a study still waiting. Any failure (upstream
 * down, database away) backs the loop off (doubling, at most 5 minutes); the loop never ends
 * until the gateway shuts down.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Db } from '../store/db.js';
import { advanceWatermark, getWatermark, oldestPending, recordSeen, withReadyStudy, type StudySeen } from '../store/publish-state.js';
import { str } from './build.js';
import type { Publisher } from './service.js';
import { DicomwebSource } from './source.js';

const MAX_BACKOFF_MS = 300_000;

function yyyymmdd(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

/** A loop that runs `step` every `everyMs`, backing off on failure, until stopped. */
class Loop {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failures = 0;
  constructor(private readonly name: string, private readonly everyMs: number, private readonly step: () => Promise<void>, private readonly log: Logger) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.step().then(
        () => {
          this.failures = 0;
          this.schedule(this.everyMs);
        },
        (err: unknown) => {
          this.failures++;
          const wait = Math.min(MAX_BACKOFF_MS, this.everyMs * 2 ** Math.min(this.failures, 16));
          this.log.warn({ loop: this.name, failures: this.failures, retryInMs: wait, err: (err as Error)?.message }, 'publish loop failed; backing off');
          this.schedule(wait);
        },
      );
    }, ms);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }
}

export class PublishDaemon {
  private readonly loops: Loop[] = [];
  private stopping = false;

  constructor(private readonly publisher: Publisher, private readonly db: Db, private readonly config: Readonly<Config>, private readonly log: Logger) {
    const w = config.publish.watch;
    if (w) this.loops.push(new Loop('watch', w.intervalSec * 1000, () => this.poll(), log));
    const recipients = config.publish.recipients;
    if (recipients.length) {
      const every = Math.max(500, Math.min(...recipients.map((r) => r.backoffMs)));
      this.loops.push(new Loop('forward-retry', every, async () => { await this.publisher.forwarder.retryDue(); }, log));
    }
  }

  start(): void {
    for (const l of this.loops) l.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops.map((l) => l.stop()));
  }

  /** One poll: record what the window holds, publish what is ready, move the high-water mark. */
  async poll(): Promise<void> {
    const w = this.config.publish.watch!;
    const up = this.publisher.upstream(w.upstream);
    const floor = yyyymmdd(new Date(Date.now() - w.lookbackDays * 86_400_000));
    const from = (await getWatermark(this.db, up.name)) ?? floor;
    const seen: StudySeen[] = [];
    for await (const s of new DicomwebSource(up).studies({ from })) {
      const uid = str(s, '0020000D');
      const n = Number(str(s, '00201208'));
      if (uid && Number.isInteger(n)) seen.push({ studyInstanceUid: uid, studyDate: str(s, '00080020'), instanceCount: n });
    }
    await recordSeen(this.db, up.name, seen);
    let published = 0;
    while (!this.stopping) {
      const did = await withReadyStudy(this.db, up.name, w.stableAfterSec, async (s) => {
        try {
          const r = await this.publisher.publish(s.studyInstanceUid, up.name);
          published++;
          // the count the poll saw: a study that grows meanwhile is seen again by the next poll
          return { publishedCount: s.instanceCount, manifestId: r.stored.id };
        } catch (err) {
          this.log.warn({ upstream: up.name, attempts: s.attempts + 1, code: (err as { code?: string })?.code, err: (err as Error)?.message }, 'watch: study not published; will retry');
          throw err;
        }
      });
      if (!did) break;
    }
    const pending = await oldestPending(this.db, up.name);
    await advanceWatermark(this.db, up.name, pending && pending < floor ? pending : floor);
    if (published) this.log.info({ upstream: up.name, published, seen: seen.length }, 'watch: studies published');
  }
}
