import type { IssueSeverity, ValidationIssue } from '../model/manifest.js';

/** Issue collector with a cap, so hostile input cannot grow the report without bound. */
export class Issues {
  readonly list: ValidationIssue[] = [];
  private dropped = 0;
  constructor(private readonly max = 500) {}
  add(severity: IssueSeverity, code: string, path: string, message: string): void {
    if (this.list.length < this.max) this.list.push({ severity, code, path, message });
    else if (severity === 'error' && !this.list.some((i) => i.code === 'GW_KOS_TOO_MANY_ISSUES')) {
      this.list.push({ severity: 'error', code: 'GW_KOS_TOO_MANY_ISSUES', path: '', message: `more than ${this.max} issues; further issues omitted` });
    } else this.dropped++;
  }
  error(code: string, path: string, message: string): void { this.add('error', code, path, message); }
  warn(code: string, path: string, message: string): void { this.add('warning', code, path, message); }
  info(code: string, path: string, message: string): void { this.add('information', code, path, message); }
  get hasErrors(): boolean { return this.list.some((i) => i.severity === 'error'); }
}
