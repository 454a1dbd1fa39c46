/**
 * Per-series thumbnails through the gateway's WADO-RS (PS3.18 §10.4.1.1.3 / §10.4.3): the series
 * /thumbnail, else /rendered of the middle instance; fetched with the user's token only when the
 * figure scrolls into view, shown from a blob: URL. When the archive cannot deliver, a
 * placeholder says why (the gateway's error code).
 */
import { ApiError, api } from '../api.js';
import { h } from '../dom.js';

// One type: some archives (Orthanc's DICOMweb plugin) refuse a list on /rendered.
const IMAGE_ACCEPT = 'image/jpeg';

async function fetchImage(path: string): Promise<Blob> {
  const r = await api(path, { headers: { accept: IMAGE_ACCEPT } });
  const blob = await r.blob();
  if (!blob.type.startsWith('image/') && !/^image\//.test(r.headers.get('content-type') ?? '')) throw new ApiError(r.status, 'GW_NOT_AN_IMAGE', 'The archive answered with something that is not an image');
  return blob;
}

async function showBlob(img: HTMLImageElement, blob: Blob): Promise<void> {
  const url = URL.createObjectURL(blob);
  img.src = url;
  await img.decode();
  if (!img.naturalWidth) throw new Error('empty image');
}

async function load(fig: HTMLElement, img: HTMLImageElement, study: string, series: any): Promise<void> {
  const base = `/dicomweb/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series.uid)}`;
  const inst: any[] = series.instance ?? [];
  const middle = inst.length ? inst[Math.floor((inst.length - 1) / 2)] : undefined;
  const tries = [`${base}/thumbnail`, ...(middle ? [`${base}/instances/${encodeURIComponent(middle.uid)}/rendered`] : [])];
  let last: unknown;
  for (const path of tries) {
    try {
      await showBlob(img, await fetchImage(path));
      fig.classList.add('loaded');
      fig.dataset.source = path.endsWith('/thumbnail') ? 'thumbnail' : 'rendered';
      return;
    } catch (err) {
      last = err;
    }
  }
  img.removeAttribute('src');
  fig.classList.add('unavailable');
  const code = last instanceof ApiError ? last.code : 'GW_NO_PREVIEW';
  fig.querySelector('.placeholder')!.textContent = `No preview (${code})`;
}

const observer =
  typeof IntersectionObserver === 'function'
    ? new IntersectionObserver(
        (entries) => {
          for (const e of entries) {
            if (!e.isIntersecting) continue;
            observer!.unobserve(e.target);
            (e.target as HTMLElement & { loadThumb?: () => void }).loadThumb?.();
          }
        },
        { rootMargin: '200px' },
      )
    : undefined;

export function seriesStrip(study: any): HTMLElement {
  const list = h('ul', { class: 'series-strip', 'aria-label': 'Series' });
  if (!study?.series?.length) return list;
  const uid = String(study.identifier?.find((i: any) => i.system === 'urn:dicom:uid')?.value ?? '').replace(/^urn:oid:/, '');
  for (const s of study.series) {
    const n = s.numberOfInstances ?? s.instance?.length ?? 0;
    const label = `Series ${s.number ?? ''} ${s.modality?.code ?? ''}${s.description ? ` — ${s.description}` : ''}, ${n} instance${n === 1 ? '' : 's'}`;
    const img = h('img', { alt: label, class: 'thumb', width: 128, height: 128, 'data-series': s.uid });
    const fig = h('figure', { class: 'series' }, h('div', { class: 'frame' }, img, h('span', { class: 'placeholder', 'aria-hidden': 'true' }, '…')), h('figcaption', {}, label)) as HTMLElement & { loadThumb?: () => void };
    fig.loadThumb = () => void load(fig, img, uid, s);
    if (observer) observer.observe(fig);
    else fig.loadThumb();
    list.append(h('li', {}, fig));
  }
  return list;
}
