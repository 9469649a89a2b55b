/*
 * useItemsStore: the items of the one job whose page is open: downloaded
 * images (for the thumbnail grid) and failed items (grouped by reason).
 *
 * It reads what exists over HTTP (GET /api/jobs/{id}/items, paged) and then
 * follows `item` events through the live store's subscription (`items_reset`,
 * sent when many items changed at once, means read them again). On SSE and
 * polling there are no item events, so it re-reads while the job's counts
 * move; after any reconnect it re-reads once to catch up. Only one job's
 * items are held at a time, so memory follows what is on screen.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef, watch } from 'vue'
import { listItems } from '@/api/http'
import { retryJob } from '@/api/job-requests'
import { isActiveJob, type Item } from '@/api/protocol'
import { useLiveStore } from './live'

const PAGE_SIZE = 500
/** Never hold more than this many items of one state (the grid is virtual, memory is not). */
const MAX_ITEMS = 200_000
const REFRESH_MS = 3_000

export interface FailureGroup {
  reason: string
  items: Item[]
}

export const useItemsStore = defineStore('items', () => {
  const live = useLiveStore()
  const jobId = ref<string | null>(null)
  const doneItems = shallowRef<Item[]>([])
  const failedItems = shallowRef<Item[]>([])
  const loading = ref(false)
  const error = ref<string | null>(null)

  const doneIds = new Set<string>()
  let failedIndex = new Map<string, number>()
  let unsubscribe: (() => void) | null = null
  let abort: AbortController | null = null
  let refreshTimer: ReturnType<typeof setInterval> | null = null
  let readCounts = { done: -1, failed: -1 }

  const failureGroups = computed<FailureGroup[]>(() => {
    const groups = new Map<string, Item[]>()
    for (const item of failedItems.value) {
      const reason = item.reason ?? 'unknown'
      let list = groups.get(reason)
      if (!list) groups.set(reason, (list = []))
      list.push(item)
    }
    return [...groups.entries()]
      .map(([reason, items]) => ({ reason, items }))
      .sort((a, b) => b.items.length - a.items.length || a.reason.localeCompare(b.reason))
  })

  function reset(): void {
    doneItems.value = []
    failedItems.value = []
    doneIds.clear()
    failedIndex = new Map()
    readCounts = { done: -1, failed: -1 }
    error.value = null
  }

  function acceptItem(item: Item): boolean {
    let changed = false
    if (item.state === 'done' && item.sha256 && !doneIds.has(item.id) && doneIds.size < MAX_ITEMS) {
      doneIds.add(item.id)
      doneItems.value.push(item)
      changed = true
    }
    const at = failedIndex.get(item.id)
    if (item.state === 'failed') {
      if (at === undefined) {
        if (failedIndex.size < MAX_ITEMS) {
          failedIndex.set(item.id, failedItems.value.length)
          failedItems.value.push(item)
          changed = true
        }
      } else {
        failedItems.value[at] = item
        changed = true
      }
    } else if (at !== undefined) {
      // Requeued by "retry failed", or done on a later attempt.
      failedItems.value = failedItems.value.filter((failed) => failed.id !== item.id)
      failedIndex = new Map(failedItems.value.map((failed, index) => [failed.id, index]))
      changed = true
    }
    return changed
  }

  /**
   * acceptItem edits the arrays in place; new array references make the change
   * visible to components that get them as props (a prop holding the same array
   * would not update, and the thumbnail grid would stay empty).
   */
  function publish(): void {
    doneItems.value = doneItems.value.slice()
    failedItems.value = failedItems.value.slice()
  }

  function onItemEvent(item: Item): void {
    if (acceptItem(item)) publish()
  }

  async function readState(id: string, state: 'done' | 'failed', signal: AbortSignal): Promise<void> {
    let after: string | undefined
    for (let page = 0; page * PAGE_SIZE < MAX_ITEMS; page++) {
      const result = await listItems(id, { state, after, limit: PAGE_SIZE }, signal)
      if (jobId.value !== id) return
      let changed = false
      for (const item of result.items) changed = acceptItem(item) || changed
      if (changed) publish()
      if (!result.next || result.items.length === 0) return
      after = result.next
    }
  }

  /** Reads both lists from the server; items already held are kept, new ones added. */
  async function refresh(): Promise<void> {
    const id = jobId.value
    if (!id) return
    abort?.abort()
    abort = new AbortController()
    const signal = abort.signal
    const job = live.job(id)
    readCounts = { done: job?.counts.done ?? -1, failed: job?.counts.failed ?? -1 }
    loading.value = true
    try {
      await readState(id, 'done', signal)
      await readState(id, 'failed', signal)
      if (jobId.value === id) error.value = null
    } catch (cause) {
      if (signal.aborted) return
      if (jobId.value === id) error.value = cause instanceof Error ? cause.message : String(cause)
    } finally {
      if (jobId.value === id && abort?.signal === signal) loading.value = false
    }
  }

  /** Without item events (SSE, polling), re-read when the counts moved. */
  function refreshIfCountsMoved(): void {
    const id = jobId.value
    if (!id || live.transport === 'ws' || loading.value) return
    const job = live.job(id)
    if (!job) return
    if (job.counts.done !== readCounts.done || job.counts.failed !== readCounts.failed) void refresh()
  }

  function open(id: string): void {
    if (jobId.value === id) return
    close()
    jobId.value = id
    unsubscribe = live.subscribeItems(id, { item: onItemEvent, reset: () => void refresh() })
    refreshTimer = setInterval(refreshIfCountsMoved, REFRESH_MS)
    void refresh()
  }

  function close(): void {
    unsubscribe?.()
    unsubscribe = null
    abort?.abort()
    abort = null
    if (refreshTimer !== null) clearInterval(refreshTimer)
    refreshTimer = null
    jobId.value = null
    loading.value = false
    reset()
  }

  /**
   * Retry failed: transient reasons when `reasons` is omitted (the server's
   * default), else the failures with one of `reasons`. Returns how many items
   * were requeued (the server's count, else what the failed count dropped by).
   * The requeued items leave the failed list at once; the rest stay.
   */
  async function retryFailed(reasons?: string[]): Promise<number> {
    const id = jobId.value
    if (!id) return 0
    const failedBefore = live.job(id)?.counts.failed ?? 0
    const { job, requeued } = await retryJob(id, reasons)
    if (job) live.upsertJob(job, { requeue: true })
    const count = requeued ?? (job ? Math.max(0, failedBefore - job.counts.failed) : 0)
    if (jobId.value !== id) return count
    // Which items went back is the server's to say: read the failed list again.
    failedItems.value = []
    failedIndex = new Map()
    void refresh()
    return count
  }

  // Anything may have happened while the connection was down: catch up once.
  watch(
    () => live.status.state,
    (state, previous) => {
      if (state === 'live' && previous !== 'live' && jobId.value) void refresh()
    },
  )
  // A finished job: one last read so the grid and failed list are complete.
  watch(
    () => (jobId.value ? live.job(jobId.value)?.state : undefined),
    (state, previous) => {
      if (state && previous && isActiveJob({ state: previous }) && !isActiveJob({ state })) void refresh()
    },
  )

  return { jobId, doneItems, failedItems, failureGroups, loading, error, open, close, refresh, retryFailed }
})
