/**
 * Transform-stream form of the WADO multipart filter (src/dicomweb/multipart.ts MultipartParser),
 * so unit tests can drive it with stream.pipeline and arbitrary chunking.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { MultipartError, MultipartParser, type MultipartFilterOptions } from '../../src/dicomweb/multipart.js';

export class MultipartFilter extends Transform {
  private readonly parser: MultipartParser;
  private resolveStarted!: (v: boolean) => void;
  private rejectStarted!: (e: Error) => void;
  /** Resolves true once the first kept part is written, false if the body held none. */
  readonly started: Promise<boolean>;
  private settled = false;

  constructor(o: MultipartFilterOptions) {
    super();
    this.parser = new MultipartParser(o, (b) => {
      this.settle(true);
      this.push(b);
    });
    this.started = new Promise<boolean>((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.started.catch(() => {});
  }

  get partsOut(): number {
    return this.parser.partsOut;
  }
  get partsIn(): number {
    return this.parser.partsIn;
  }
  get partsDropped(): number {
    return this.parser.partsDropped;
  }

  private settle(v: boolean | Error): void {
    if (this.settled) return;
    this.settled = true;
    if (v instanceof Error) this.rejectStarted(v);
    else this.resolveStarted(v);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.parser.write(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.parser.end();
      this.settle(this.parser.partsOut > 0);
      cb();
    } catch (err) {
      this.settle(err as Error);
      cb(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.settle(err ?? new MultipartError('stream closed'));
    cb(err);
  }
}
