/**
 * ATNA export (IHE ITI-20 Record Audit Event): each AuditEvent, converted to a DICOM PS3.15
 * Annex A.5 audit message (XML, MSGID "IHE+RFC-3881"), in an RFC 5424 syslog record, sent over
 * TLS or TCP with RFC 5425/6587 octet-counting framing or one UDP datagram per record (RFC 5426).
 * A bounded in-memory retry queue holds records while the collector is unreachable; when it is
 * full the oldest record is dropped and counted. Sending never blocks a request.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { AuditConfig } from '../config.js';
import type { Logger } from '../log.js';

type SyslogConfig = NonNullable<AuditConfig['syslog']>;

export interface SyslogExporter {
  send(event: AuditEvent): void;
  /** Resolve once the queue is empty (or after timeoutMs) */
  drain(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
  stats(): { queued: number; sent: number; dropped: number };
}

// facility 10 (security/authorization), severity 5 (notice) — RFC 5424 §6.2.1; ATNA convention
const PRI = 10 * 8 + 5;

export function formatSyslog(event: AuditEvent, appName: string, hostname = os.hostname()): string {
  const ts = event.recorded ?? new Date().toISOString();
  const host = (hostname || '-').replace(/[^\x21-\x7e]/g, '').slice(0, 255) || '-';
  const app = appName.replace(/[^\x21-\x7e]/g, '').slice(0, 48) || '-';
  return `<${PRI}>1 ${ts} ${host} ${app} ${process.pid} IHE+RFC-3881 - ${toDicomAuditXml(event)}`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** FHIR AuditEvent → DICOM audit message (PS3.15 A.5.1), the fields ATNA repositories index. */
export function toDicomAuditXml(e: AuditEvent): string {
  const t = e.type;
  const outcome = e.outcome ?? '0';
  let x = `<?xml version="1.0" encoding="UTF-8"?><AuditMessage>`;
  x += `<EventIdentification EventActionCode="${esc(e.action ?? 'E')}" EventDateTime="${esc(e.recorded ?? '')}" EventOutcomeIndicator="${esc(outcome)}">`;
  x += `<EventID csd-code="${esc(t.code ?? '')}" codeSystemName="${t.system?.includes('dicom') ? 'DCM' : esc(t.system ?? '')}" originalText="${esc(t.display ?? t.code ?? '')}"/>`;
  for (const s of e.subtype ?? []) x += `<EventTypeCode csd-code="${esc(s.code ?? '')}" codeSystemName="${esc(s.system ?? '')}" originalText="${esc(s.display ?? s.code ?? '')}"/>`;
  for (const p of e.purposeOfEvent ?? []) for (const c of p.coding ?? []) x += `<PurposeOfUse csd-code="${esc(c.code ?? '')}" codeSystemName="${esc(c.system ?? '')}" originalText="${esc(c.display ?? c.code ?? '')}"/>`;
  x += `</EventIdentification>`;
  for (const a of e.agent ?? []) {
    const who = a.who?.identifier?.value ?? a.who?.display ?? 'unknown';
    const net = a.network?.address ? ` NetworkAccessPointID="${esc(a.network.address)}" NetworkAccessPointTypeCode="${esc(a.network.type ?? '2')}"` : '';
    x += `<ActiveParticipant UserID="${esc(who)}" UserIsRequestor="${a.requestor ? 'true' : 'false'}"${net}>`;
    for (const c of a.type?.coding ?? []) x += `<RoleIDCode csd-code="${esc(c.code ?? '')}" codeSystemName="${c.system?.includes('dicom') ? 'DCM' : esc(c.system ?? '')}" originalText="${esc(c.display ?? c.code ?? '')}"/>`;
    x += `</ActiveParticipant>`;
  }
  x += `<AuditSourceIdentification AuditSourceID="${esc(e.source?.observer?.display ?? 'mado-gateway')}"><AuditSourceTypeCode csd-code="4" codeSystemName="DCM" originalText="Application Server"/></AuditSourceIdentification>`;
  for (const en of e.entity ?? []) {
    // A query has no identifier of its own: DICOM PS3.15 A.5.3 carries it in ParticipantObjectQuery.
    const id = en.what?.reference ?? en.what?.identifier?.value ?? (en.query ? 'query' : undefined);
    if (!id) continue;
    const idType = en.what?.identifier?.type?.coding?.[0];
    x += `<ParticipantObjectIdentification ParticipantObjectID="${esc(id)}" ParticipantObjectTypeCode="${esc(en.type?.code ?? '2')}"${en.role?.code ? ` ParticipantObjectTypeCodeRole="${esc(en.role.code)}"` : ''}>`;
    x += idType
      ? `<ParticipantObjectIDTypeCode csd-code="${esc(idType.code ?? '')}" codeSystemName="DCM" originalText="${esc(idType.display ?? '')}"/>`
      : `<ParticipantObjectIDTypeCode csd-code="${en.role?.code === '1' ? '2' : '12'}" codeSystemName="RFC-3881" originalText="${en.role?.code === '1' ? 'Patient Number' : 'URI'}"/>`;
    if (en.query) x += `<ParticipantObjectQuery>${esc(en.query)}</ParticipantObjectQuery>`;
    for (const d of en.detail ?? []) x += `<ParticipantObjectDetail type="${esc(d.type ?? '')}" value="${Buffer.from(d.valueString ?? '').toString('base64')}"/>`;
    x += `</ParticipantObjectIdentification>`;
  }
  return x + `</AuditMessage>`;
}

export function createSyslogExporter(cfg: SyslogConfig, log: Logger, opts: { caFile?: string; tlsOptions?: tls.ConnectionOptions } = {}): SyslogExporter {
  const sender = new SyslogSender(cfg, log, opts.tlsOptions);
  return {
    send: (event) => sender.enqueue(Buffer.from(formatSyslog(event, cfg.appName), 'utf8')),
    drain: (timeoutMs = 5_000) => sender.drain(timeoutMs),
    close: async () => sender.close(),
    stats: () => ({ queued: sender.queue.length, sent: sender.sent, dropped: sender.dropped }),
  };
}

/** The bounded queue and the one connection (or UDP socket) records leave through, in order. */
class SyslogSender {
  readonly queue: Buffer[] = [];
  sent = 0;
  dropped = 0;
  private socket: net.Socket | undefined;
  private udp: dgram.Socket | undefined;
  private connecting = false;
  private backoff = 500;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private writing = false;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly cfg: SyslogConfig, private readonly log: Logger, private readonly tlsOptions?: tls.ConnectionOptions) {}

  enqueue(record: Buffer): void {
    if (this.closed) return;
    if (this.queue.length >= this.cfg.maxQueue) {
      this.queue.shift();
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.log.error({ dropped: this.dropped }, 'syslog queue full: oldest audit records dropped');
    }
    this.queue.push(record);
    this.pump();
  }

  drain(timeoutMs: number): Promise<boolean> {
    if (!this.queue.length) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
      this.pump();
    });
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.end();
    this.udp?.close();
  }

  private settle(): void {
    if (this.queue.length === 0) while (this.waiters.length) this.waiters.shift()!();
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.backoff);
    this.retryTimer.unref();
    this.backoff = Math.min(this.backoff * 2, 30_000);
  }

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const { host, port } = this.cfg;
    const onConnect = () => {
      this.connecting = false;
      this.backoff = 500;
      this.socket = s;
      this.pump();
    };
    const s: net.Socket =
      this.cfg.protocol === 'tls'
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.tlsOptions }, onConnect)
        : net.connect({ host, port }, onConnect);
    s.setNoDelay(true);
    s.on('error', (err) => this.log.warn({ err: err.message, queued: this.queue.length }, 'syslog connection error'));
    s.on('close', () => {
      this.connecting = false;
      if (this.socket === s) this.socket = undefined;
      if (this.queue.length) this.retry();
    });
    s.unref();
  }

  private pump(): void {
    if (this.closed || this.writing || !this.queue.length) return this.settle();
    if (this.cfg.protocol === 'udp') return this.sendDatagram();
    if (!this.socket) return this.connect();
    const msg = this.queue[0]!;
    // RFC 5425 §4.3 / RFC 6587 §3.4.1 octet counting: "MSG-LEN SP SYSLOG-MSG"
    const frame = Buffer.concat([Buffer.from(`${msg.length} `), msg]);
    this.writing = true;
    this.socket.write(frame, (err) => this.written(err, false));
  }

  private sendDatagram(): void {
    this.udp ??= dgram.createSocket(net.isIPv6(this.cfg.host) ? 'udp6' : 'udp4');
    this.udp.unref();
    const msg = this.queue[0]!;
    if (msg.length > 65_507) {
      // Cannot fit one datagram (RFC 5426 §3.2): drop it rather than block the queue; use TCP/TLS
      // for very large events (WADO-RS of big studies lists their instances).
      this.queue.shift();
      this.dropped++;
      this.log.error({ bytes: msg.length }, 'syslog record too large for UDP: dropped');
      return this.pump();
    }
    this.writing = true;
    this.udp.send(msg, this.cfg.port, this.cfg.host, (err) => this.written(err, true));
  }

  private written(err: Error | null | undefined, udp: boolean): void {
    this.writing = false;
    if (err) {
      if (udp) this.log.warn({ err: err.message }, 'syslog UDP send failed');
      return this.retry();
    }
    this.queue.shift();
    this.sent++;
    this.pump();
  }
}
