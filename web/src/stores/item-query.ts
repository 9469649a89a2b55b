/*
 * The job page's item tools as plain functions (tested alone): search by URL,
 * filter by state and reason, sort, group failures by reason, and the failed
 * URLs as text to copy or download.
 */
import type { Item } from '@/api/protocol'

export type ItemSort = 'arrival' | 'url' | 'largest' | 'smallest'
export type ItemStateFilter = 'all' | 'done' | 'failed'

export interface ItemQuery {
  /** Case-insensitive part of the URL; '' matches every item. */
  search: string
  state: ItemStateFilter
  /** A failure reason, or '' for any. Only failed items have one. */
  reason: string
  sort: ItemSort
}

export function emptyQuery(): ItemQuery {
  return { search: '', state: 'all', reason: '', sort: 'arrival' }
}

export function isFiltering(query: ItemQuery): boolean {
  return query.search.trim() !== '' || query.state !== 'all' || query.reason !== '' || query.sort !== 'arrival'
}

/** The items of `items` (done or failed ones) that match `query`, in its order; `items` is not changed. */
export function queryItems(items: readonly Item[], query: ItemQuery): Item[] {
  const needle = query.search.trim().toLowerCase()
  let out = items.filter(
    (item) =>
      (query.state === 'all' || item.state === query.state) &&
      (query.reason === '' || item.reason === query.reason) &&
      (needle === '' || item.url.toLowerCase().includes(needle)),
  )
  if (query.sort === 'url') out = out.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
  else if (query.sort === 'largest') out = out.sort((a, b) => (b.bytes ?? 0) - (a.bytes ?? 0))
  else if (query.sort === 'smallest') out = out.sort((a, b) => (a.bytes ?? 0) - (b.bytes ?? 0))
  return out
}

export interface ReasonGroup {
  reason: string
  items: Item[]
}

/** Failed items grouped by reason, largest group first (ties by reason). */
export function groupByReason(items: readonly Item[]): ReasonGroup[] {
  const groups = new Map<string, Item[]>()
  for (const item of items) {
    const reason = item.reason ?? 'unknown'
    let list = groups.get(reason)
    if (!list) groups.set(reason, (list = []))
    list.push(item)
  }
  return [...groups.entries()]
    .map(([reason, list]) => ({ reason, items: list }))
    .sort((a, b) => b.items.length - a.items.length || a.reason.localeCompare(b.reason))
}

/** One URL a line, ready to paste into a new job. */
export function urlsText(items: readonly Item[]): string {
  return items.length === 0 ? '' : `${items.map((item) => item.url).join('\n')}\n`
}
