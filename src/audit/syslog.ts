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
    const id = en.what?.reference ?? en.what?.identifier?.value;
    if (!id) continue;
    const idType = en.what?.identifier?.type?.coding?.[0];
    x += `<ParticipantObjectIdentification ParticipantObjectID="${esc(id)}" ParticipantObjectTypeCode="${esc(en.type?.code ?? '2')}"${en.role?.code ? ` ParticipantObjectTypeCodeRole="${esc(en.role.code)}"` : ''}>`;
    x += idType
      ? `<ParticipantObjectIDTypeCode csd-code="${esc(idType.code ?? '')}" codeSystemName="DCM" originalText="${esc(idType.display ?? '')}"/>`
      : `<ParticipantObjectIDTypeCode csd-code="${en.role?.code === '1' ? '2' : '12'}" codeSystemName="RFC-3881" originalText="${en.role?.code === '1' ? 'Patient Number' : 'URI'}"/>`;
    for (const d of en.detail ?? []) x += `<ParticipantObjectDetail type="${esc(d.type ?? '')}" value="${Buffer.from(d.valueString ?? '').toString('base64')}"/>`;
    x += `</ParticipantObjectIdentification>`;
  }
  return x + `</AuditMessage>`;
}

export function createSyslogExporter(cfg: SyslogConfig, log: Logger, opts: { caFile?: string; tlsOptions?: tls.ConnectionOptions } = {}): SyslogExporter {
  const queue: Buffer[] = [];
  let sent = 0;
  let dropped = 0;
  let socket: net.Socket | undefined;
  let udp: dgram.Socket | undefined;
  let connecting = false;
  let backoff = 500;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let writing = false;
  const waiters: Array<() => void> = [];

  const settle = () => {
    if (queue.length === 0) while (waiters.length) waiters.shift()!();
  };

  const retry = () => {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      pump();
    }, backoff);
    retryTimer.unref();
    backoff = Math.min(backoff * 2, 30_000);
  };

  const connect = () => {
    if (connecting || closed) return;
    connecting = true;
    const onConnect = () => {
      connecting = false;
      backoff = 500;
      socket = s;
      pump();
    };
    const s: net.Socket =
      cfg.protocol === 'tls'
        ? tls.connect({ host: cfg.host, port: cfg.port, servername: net.isIP(cfg.host) ? undefined : cfg.host, ...opts.tlsOptions }, onConnect)
        : net.connect({ host: cfg.host, port: cfg.port }, onConnect);
    s.setNoDelay(true);
    s.on('error', (err) => log.warn({ err: err.message, queued: queue.length }, 'syslog connection error'));
    s.on('close', () => {
      connecting = false;
      if (socket === s) socket = undefined;
      if (queue.length) retry();
    });
    s.unref();
  };

  const pump = () => {
    if (closed || writing || !queue.length) return settle();
    if (cfg.protocol === 'udp') {
      udp ??= dgram.createSocket(net.isIPv6(cfg.host) ? 'udp6' : 'udp4');
      udp.unref();
      const msg = queue[0]!;
      if (msg.length > 65_507) {
        // Cannot fit one datagram (RFC 5426 §3.2): drop it rather than block the queue; use TCP/TLS
        // for very large events (WADO-RS of big studies lists their instances).
        queue.shift();
        dropped++;
        log.error({ bytes: msg.length }, 'syslog record too large for UDP: dropped');
        return pump();
      }
      writing = true;
      udp.send(msg, cfg.port, cfg.host, (err) => {
        writing = false;
        if (err) {
          log.warn({ err: err.message }, 'syslog UDP send failed');
          return retry();
        }
        queue.shift();
        sent++;
        pump();
      });
      return;
    }
    if (!socket) return connect();
    const msg = queue[0]!;
    // RFC 5425 §4.3 / RFC 6587 §3.4.1 octet counting: "MSG-LEN SP SYSLOG-MSG"
    const frame = Buffer.concat([Buffer.from(`${msg.length} `), msg]);
    writing = true;
    socket.write(frame, (err) => {
      writing = false;
      if (err) return retry();
      queue.shift();
      sent++;
      pump();
    });
  };

  return {
    send(event) {
      if (closed) return;
      if (queue.length >= cfg.maxQueue) {
        queue.shift();
        dropped++;
        if (dropped === 1 || dropped % 1000 === 0) log.error({ dropped }, 'syslog queue full: oldest audit records dropped');
      }
      queue.push(Buffer.from(formatSyslog(event, cfg.appName), 'utf8'));
      pump();
    },
    drain(timeoutMs = 5_000) {
      if (!queue.length) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), timeoutMs);
        waiters.push(() => {
          clearTimeout(t);
          resolve(true);
        });
        pump();
      });
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      socket?.end();
      udp?.close();
    },
    stats: () => ({ queued: queue.length, sent, dropped }),
  };
}
