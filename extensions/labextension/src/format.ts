/**
 * Plain formatting of devices and quotas for the status bar and the panel.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { ICreditsSpan } from './jobs-types';
import { IDevice, IQuotaStatus } from './types';

/** Megabytes as GB with at most one decimal ("21", "4.1"). */
export function gb(mb: number): string {
  const v = mb / 1024;
  return v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
}

/**
 * A short device name: "H100" for "NVIDIA H100 80GB HBM3", the profile for a MIG slice
 * ("1g.10gb").
 */
export function shortName(device: IDevice): string {
  if (device.kind === 'mig') {
    const m = /\b(\d+g\.\d+gb)\b/.exec(device.name);
    return device.profile ?? (m ? m[1] : device.name);
  }
  const words = device.name.replace(/^NVIDIA\s+/i, '').split(/\s+/);
  return words[0] || device.name;
}

/**
 * "H100 · 73% · 21/80 GB", "1g.10gb · 4.1/10 GB" for a MIG slice without utilization, and
 * "… · yours" on a shared GPU, where the figures are this server's processes only.
 */
export function deviceSummary(device: IDevice, trans: TranslationBundle): string {
  const s = device.latest;
  const name = shortName(device);
  if (!s) {
    return trans.__('%1 · no sample yet', name);
  }
  const mem = `${gb(s.memory_used_mb)}/${gb(s.memory_total_mb)} GB`;
  const parts = [name];
  if (s.utilization_pct !== null) {
    parts.push(`${Math.round(s.utilization_pct)}%`);
  } else if (device.kind !== 'mig') {
    parts.push(trans.__('n/a'));
  }
  parts.push(mem);
  if (s.scope === 'lease') {
    parts.push(trans.__('yours'));
  }
  return parts.join(' · ');
}

/** A lease's node; a multi-node lease's nodes, which the API joins with commas, spaced:
 * "gpu1, gpu2" ("—" before it is granted). */
export function nodesText(node: string | null | undefined): string {
  return node ? node.split(',').join(', ') : '—';
}

/** The quota that binds first on GPU-hours: the one with the fewest hours left. */
export function bindingHours(quotas: IQuotaStatus[]): IQuotaStatus | null {
  let best: IQuotaStatus | null = null;
  for (const q of quotas) {
    if (typeof q.gpu_hours_left !== 'number') {
      continue;
    }
    if (!best || q.gpu_hours_left < (best.gpu_hours_left as number)) {
      best = q;
    }
  }
  return best;
}

/** "3.2 GPU-h left", or null when no quota limits GPU-hours. */
export function hoursLeft(quotas: IQuotaStatus[], trans: TranslationBundle): string | null {
  const q = bindingHours(quotas);
  if (!q) {
    return null;
  }
  return trans.__('%1 GPU-h left', Math.max(0, q.gpu_hours_left as number).toFixed(1));
}

/** "5 min ago" style age of an ISO time. */
export function since(iso: string | null, trans: TranslationBundle): string {
  if (!iso) {
    return trans.__('not granted yet');
  }
  const t = Date.parse(iso);
  if (Number.isNaN(t)) {
    return iso;
  }
  const min = Math.max(0, Math.round((Date.now() - t) / 60000));
  const when = new Date(t).toLocaleString();
  if (min < 60) {
    return trans.__('%1 (%2 min ago)', when, min);
  }
  return trans.__('%1 (%2 h ago)', when, (min / 60).toFixed(1));
}

/** Credits for people: two decimals under 10, one under 100, none above, trailing zeros
 * dropped ("0.5", "2", "12.5", "240"); "< 0.01" for a price that rounds to nothing. */
export function credits(n: number): string {
  const fixed = n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0);
  const text = fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  return text === '0' && n > 0 ? '< 0.01' : text;
}

/** A price per hour: "≈ 4 credits/h", or "1–4 credits/h" where the GPU models that may
 * serve it have different rates; null for no price. */
export function creditsPerHour(
  span: ICreditsSpan | null | undefined,
  trans: TranslationBundle
): string | null {
  if (!span) {
    return null;
  }
  const [low, high] = [credits(span.min), credits(span.max)];
  return low === high ? trans.__('≈ %1 credits/h', low) : trans.__('%1–%2 credits/h', low, high);
}

/** A span of seconds in a few words: "45 s", "2 min", "1 h", "1 h 30 min". */
export function timeSpan(s: number, trans: TranslationBundle): string {
  const n = Math.max(0, Math.round(s));
  if (n < 60) {
    return trans.__('%1 s', n);
  }
  const min = Math.round(n / 60);
  if (min < 60) {
    return trans.__('%1 min', min);
  }
  const [h, m] = [Math.floor(min / 60), min % 60];
  return m ? trans.__('%1 h %2 min', h, m) : trans.__('%1 h', h);
}

/** A time on a 24-hour clock in the browser's zone: "14:05" today ("14:05:10" with
 * `seconds`), "7 Dec, 14:05" on another day; the ISO text as it is when it is no time. */
export function clock(iso: string, seconds = false): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) {
    return iso;
  }
  const time = t.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: seconds ? '2-digit' : undefined,
    hourCycle: 'h23'
  });
  if (t.toDateString() === new Date().toDateString()) {
    return time;
  }
  return `${t.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })}, ${time}`;
}

/** A share as a percentage for people: 0.3 -> "30", 0.125 -> "12.5". */
export function percent(share: number): string {
  return String(Math.round(share * 1000) / 10);
}
