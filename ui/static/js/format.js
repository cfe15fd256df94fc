// Small formatting helpers shared by the library, the uploads and the player.

/** Seconds as m:ss (h:mm:ss from an hour on); '–:––' when unknown. */
export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '-:--';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A duration spelled out for screen readers, e.g. "3 minutes 20 seconds". */
export function spokenTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown length';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts = [];
  if (h) parts.push(`${h} hour${h === 1 ? '' : 's'}`);
  if (m) parts.push(`${m} minute${m === 1 ? '' : 's'}`);
  if (s || !parts.length) parts.push(`${s} second${s === 1 ? '' : 's'}`);
  return parts.join(' ');
}

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

/** `created_at` as a short date ("Today, 8:31 PM" for today); `{text, title}`. */
export function formatAdded(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return { text: '—', title: '' };
  const now = new Date();
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return { text: sameDay ? `Today, ${timeFmt.format(d)}` : dateFmt.format(d), title: fullFmt.format(d) };
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** A file's name without its extension: the default title of an upload. */
export function fileTitle(filename) {
  const base = String(filename || '').replace(/^.*[\\/]/, '');
  const dot = base.lastIndexOf('.');
  const t = (dot > 0 ? base.slice(0, dot) : base).trim();
  return t || base || 'Untitled';
}

const numberFmt = new Intl.NumberFormat();
export function formatCount(n) {
  return numberFmt.format(n);
}

export function plural(n, one, many = `${one}s`) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}
