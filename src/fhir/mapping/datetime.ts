/**
 * DICOM DA/TM + Timezone Offset From UTC (0008,0201) ⇄ FHIR dateTime, keeping precision so that a
 * KOS → FHIR → KOS round trip restores the same strings (IG KOS→FHIR mapping, row 35; SUPPL §6.X.2.10:
 * the offset applies to every DA/TM of the manifest).
 * Limits: FHIR needs seconds once a time is given, so TM "HH"/"HHMM" come back as "HHMM00".
 */

/** "+0100" → "+01:00"; "+0000" → "+00:00" (FHIR accepts both that and Z; we keep the offset form). */
function fhirOffset(tz: string): string | undefined {
  const m = /^([+-])(\d{2})(\d{2})$/.exec(tz.trim());
  return m ? `${m[1]}${m[2]}:${m[3]}` : undefined;
}

/** DICOM TM → "HH:MM:SS(.f+)" or undefined when malformed. Accepts the legacy "HH:MM:SS" form. */
function fhirTime(tm: string): string | undefined {
  const t = tm.trim().replace(/:/g, '');
  const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$/.exec(t);
  if (!m) return undefined;
  const hh = m[1]!, mm = m[2] ?? '00', ss = m[3] ?? '00';
  if (+hh > 23 || +mm > 59 || +ss > 60) return undefined;
  return `${hh}:${mm}:${ss}${m[3] && m[4] ? m[4] : ''}`;
}

function fhirDate(da: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim().replace(/[-.]/g, ''));
  if (!m) return undefined;
  if (+m[2]! < 1 || +m[2]! > 12 || +m[3]! < 1 || +m[3]! > 31) return undefined;
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** DICOM DA (+TM, +offset) → FHIR date or dateTime. The offset defaults to `fallbackTz` (decisions.md D22). */
export function dicomToFhirDateTime(da: string | undefined, tm: string | undefined, tz: string | undefined, fallbackTz: string): string | undefined {
  if (!da) return undefined;
  const d = fhirDate(da);
  if (!d) return undefined;
  const t = tm ? fhirTime(tm) : undefined;
  if (!t) return d;
  const off = fhirOffset(tz ?? '') ?? fhirOffset(fallbackTz) ?? '+00:00';
  return `${d}T${t}${off}`;
}

/** DICOM DA → FHIR date (birthDate). */
export function dicomToFhirDate(da: string | undefined): string | undefined {
  return da ? fhirDate(da) : undefined;
}

export function fhirToDicomDate(d: string | undefined): string | undefined {
  if (!d) return undefined;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(d);
  if (!m) return undefined;
  return `${m[1]}${m[2] ?? '01'}${m[3] ?? '01'}`;
}

export interface DicomDateTime { date: string; time?: string; tz?: string }

/** Offset of a FHIR dateTime as "+HHMM" (Z → "+0000"), or undefined for a date only. */
export function offsetOf(dt: string | undefined): string | undefined {
  if (!dt) return undefined;
  const m = /T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.exec(dt);
  if (!m) return undefined;
  return m[1] === 'Z' ? '+0000' : m[1]!.replace(':', '');
}

function offsetMinutes(tz: string): number {
  const sign = tz.startsWith('-') ? -1 : 1;
  return sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3, 5)));
}

/**
 * FHIR date/dateTime → DICOM DA/TM expressed in the manifest offset `tz` ("+HHMM"): a dateTime with
 * another offset is shifted so that DA/TM + (0008,0201) denote the same instant. Fractional-second
 * digits are kept as written.
 */
export function fhirToDicomDateTime(dt: string | undefined, tz: string): DicomDateTime | undefined {
  if (!dt) return undefined;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(dt.trim());
  if (!m) return undefined;
  const [, y, mo = '01', d = '01', hh, mi, ss = '00', frac = '', off] = m;
  if (hh === undefined) return { date: `${y}${mo}${d}` };
  let date = `${y}${mo}${d}`;
  let time = `${hh}${mi}${ss}`;
  const srcTz = off ? (off === 'Z' ? '+0000' : off.replace(':', '')) : tz;
  if (srcTz !== tz) {
    const delta = offsetMinutes(tz) - offsetMinutes(srcTz);
    const ms = Date.UTC(+y!, +mo - 1, +d, +hh, +mi!, Math.min(+ss, 59)) + delta * 60_000;
    const x = new Date(ms);
    const p = (n: number) => String(n).padStart(2, '0');
    date = `${x.getUTCFullYear()}${p(x.getUTCMonth() + 1)}${p(x.getUTCDate())}`;
    time = `${p(x.getUTCHours())}${p(x.getUTCMinutes())}${ss === '60' ? '60' : p(x.getUTCSeconds())}`;
  }
  return { date, time: `${time}${frac.slice(0, 7)}`, tz };
}
