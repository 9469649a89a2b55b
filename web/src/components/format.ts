/*
 * How numbers read on screen: counts with thousands separators, byte sizes,
 * rates and durations. One place, so every page says "1,234" the same way.
 */
const countFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const rateFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })

export function formatCount(value: number): string {
  return countFormat.format(Math.max(0, Math.floor(value)))
}

/*
 * Bytes in binary units (1 KiB = 1024 B), the convention `litchi fetch` and
 * `litchi watch` use too (src/cli/progress_view.cpp), so the terminal and the
 * browser show the same figure for the same bytes.
 */
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes)
  let unit = 0
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? Math.round(value) : rateFormat.format(value)} ${BYTE_UNITS[unit]}`
}

export function formatItemRate(perSecond: number): string {
  return `${rateFormat.format(Math.max(0, perSecond))}/s`
}

export function formatByteRate(perSecond: number): string {
  return `${formatBytes(perSecond)}/s`
}

/** "42 s", "3 min 5 s", "2 h 10 min"; an em dash when unknown. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '—'
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  const minutes = Math.floor(s / 60)
  if (minutes < 60) return `${minutes} min ${s % 60} s`
  const hours = Math.floor(minutes / 60)
  return `${hours} h ${minutes % 60} min`
}

export function progressText(finished: number, total: number): string {
  return `${formatCount(finished)} of ${formatCount(total)} images`
}

const REASON_TEXT: Record<string, string> = {
  bad_url: 'Not a valid URL',
  dns: 'Host not found',
  connect: 'Could not connect',
  tls: 'TLS error',
  timeout: 'Timed out',
  http: 'HTTP error',
  too_large: 'Too large',
  truncated: 'Download cut short',
  too_many_redirects: 'Too many redirects',
  blocked_address: 'Blocked address',
  not_image: 'Not an image',
  too_many_pixels: 'Too many pixels',
  io: 'Storage error',
  cancelled: 'Cancelled',
}

export function reasonText(reason: string): string {
  return REASON_TEXT[reason] ?? reason
}

export function formatDate(iso: string): string {
  if (!iso) return ''
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString()
}
