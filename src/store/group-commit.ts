/**
 * Group commit (decisions.md D120–D123): concurrent submissions share one transaction and so one
 * COMMIT and one WAL flush. Each member runs inside its own savepoint, so a member that fails
 * rolls back only its own rows and gets its own error; the others go on. Members run one after
 * another on the group's connection, in arrival order (a later submission of a study supersedes
 * an earlier one, as it would with one transaction each).
 *
 * - Idle: a submission starts a group at once (a group of one: no added latency).
 * - Busy: at most `maxInFlight` groups run; submissions arriving meanwhile queue and form the next
 *   group (at most `maxMembers`), so the batch grows with the load by itself (no timer).
 * - A member whose error is worth a retry (serialization failure, deadlock, a racing unique key)
 *   is run again alone after its group, in a transaction of its own.
 * - When the group as a whole fails (its prologue, a savepoint command, or COMMIT), no member's
 *   rows were committed: every member not yet answered is run again alone, so nobody gets a false
 *   failure. A COMMIT that failed for a lost connection may have committed after all; the alone
 *   run then finds the rows (an idempotent "duplicate" for manifests), never a second copy.
 */
import { withConnection, type Db, type PgConn } from './db.js';
import { isRetryable, type Tx } from './manifests.js';

export interface GroupRunner<J, R, C> {
  /** First statements of each group, e.g. locks and lookups for all its members at once */
  prologue(tx: Tx, jobs: readonly J[]): Promise<C>;
  /** One member, inside its savepoint; `ctx` is the prologue's answer (members update it as they go) */
  member(tx: Tx, job: J, ctx: C): Promise<R>;
  /** One job alone in its own transaction (the retry path) */
  alone(job: J): Promise<R>;
}

export interface GroupCommitOptions {
  /** Groups running at once (each holds one pool connection) */
  maxInFlight?: number;
  /** Members per group */
  maxMembers?: number;
}

interface Pending<J, R> {
  job: J;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** Figures for /metrics and the bench: groups run, members, members retried alone. */
export interface GroupCommitStats {
  groups: number;
  members: number;
  retriedAlone: number;
  groupFailures: number;
}

export class GroupCommit<J, R, C> {
  private readonly queue: Array<Pending<J, R>> = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxMembers: number;
  readonly stats: GroupCommitStats = { groups: 0, members: 0, retriedAlone: 0, groupFailures: 0 };

  constructor(
    private readonly db: Db,
    private readonly runner: GroupRunner<J, R, C>,
    o: GroupCommitOptions = {},
  ) {
    this.maxInFlight = Math.max(1, o.maxInFlight ?? 4);
    this.maxMembers = Math.max(1, o.maxMembers ?? 32);
  }

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length) {
      const batch = this.queue.splice(0, this.maxMembers);
      this.inFlight++;
      void this.runGroup(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /** One group: its transaction, then the answers (and the alone runs of those that need one). */
  private async runGroup(batch: Array<Pending<J, R>>): Promise<void> {
    this.stats.groups++;
    this.stats.members += batch.length;
    const g: GroupState<J, R> = { done: [], again: [], answered: new Set() };
    // A group of one needs no savepoint: its own failure rolls back the whole transaction.
    const alone = batch.length === 1;
    try {
      await this.db.transaction((tx) =>
        withConnection(tx, async (conn) => {
          const ctx = await this.runner.prologue(tx, batch.map((p) => p.job));
          for (const [i, p] of batch.entries()) await this.runMember(tx, conn, alone ? undefined : `gc_${i}`, p, ctx, g);
          if (alone && !g.done.length) throw MEMBER_FAILED;
        }),
      );
    } catch (err) {
      if (err !== MEMBER_FAILED) {
        // Nothing of this group was committed: every member not answered with its own error runs alone.
        this.stats.groupFailures++;
        g.done = [];
        g.again = batch.filter((p) => !g.answered.has(p));
      }
    }
    for (const d of g.done) d.p.resolve(d.r);
    this.stats.retriedAlone += g.again.length;
    await Promise.all(g.again.map((p) => this.runner.alone(p.job).then(p.resolve, p.reject)));
  }

  /**
   * One member inside its own savepoint. The SAVEPOINT command is queued on the connection before
   * the member's first statement without waiting for it (the connection runs them in order), so a
   * member costs no extra round trip; savepoints nest (at most maxMembers deep) and COMMIT releases them.
   * Without a savepoint (a group of one) the member's failure is answered the same way and the
   * caller rolls the transaction back.
   */
  private async runMember(tx: Tx, conn: PgConn, savepoint: string | undefined, p: Pending<J, R>, ctx: C, g: GroupState<J, R>): Promise<void> {
    const sp = savepoint === undefined ? undefined : conn.query(`savepoint ${savepoint}`);
    sp?.catch(() => {}); // awaited below; a failed SAVEPOINT also fails the member's statements
    let r: R;
    try {
      r = await this.runner.member(tx, p.job, ctx);
      await sp;
    } catch (err) {
      // The member's own failure: undo its rows only, then answer it (or retry it alone when
      // retryable). A failing savepoint command throws on: the whole group is then retried.
      if (sp) {
        await sp;
        await conn.query(`rollback to savepoint ${savepoint}`);
      }
      if (isRetryable(err)) g.again.push(p);
      else {
        g.answered.add(p);
        p.reject(err);
      }
      return;
    }
    g.done.push({ p, r });
  }
}

/** Thrown out of a group of one whose member failed: roll back, the member has its answer. */
const MEMBER_FAILED = new Error('group member failed');

interface GroupState<J, R> {
  /** Members that succeeded, answered after COMMIT */
  done: Array<{ p: Pending<J, R>; r: R }>;
  /** Members to run again alone after the group */
  again: Array<Pending<J, R>>;
  /** Members already answered with their own error */
  answered: Set<Pending<J, R>>;
}
