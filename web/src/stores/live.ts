/*
 * useLiveStore: the live state of every job and the ONE progress connection
 * of the app. Started once from main.ts when the user is signed in; views and
 * components only read it, so moving between pages never opens a socket or
 * refetches: the numbers are already here.
 *
 * Pipeline: transport → FrameBatcher (one batch per animation frame, a timer
 * when hidden) → Sequencer (seq order, duplicates dropped, gap → resume) →
 * mergeJob (no count goes backwards) → reactive `jobs`. A small copy (last seq,
 * per-job counts) is saved to sessionStorage so a reload paints at once and
 * the new socket's first frame is `resume since lastSeq`.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef, triggerRef } from 'vue'
import { ApiError, checkAuth, getProgress, listJobs } from '@/api/http'
import {
  isActiveJob,
  percentFinished,
  finishedCount,
  type ClientMessage,
  type Item,
  type Job,
  type ServerMessage,
} from '@/api/protocol'
import {
  LiveConnection,
  type ConnectionStatus,
  type LiveConnectionEnvironment,
  type LiveConnectionOptions,
} from './live/connection'
import { browserFrameClock, FrameBatcher, type FrameClock } from './live/frame-batcher'
import { mergeJob } from './live/job-merge'
import { clearLiveState, loadLiveState, saveLiveState, sessionStore, type KeyValueStorage } from './live/persist'
import { Sequencer } from './live/sequencer'
import type { EventSourceFactory, TransportKind, WebSocketFactory } from './live/transports'

export type { ConnectionStatus } from './live/connection'

/** What the connection badge shows; `data-connection` takes these values. */
export type ConnectionDisplay = 'live' | 'reconnecting' | 'offline'

export interface JobSpeed {
  itemsPerSecond: number
  bytesPerSecond: number
  /** Seconds left: the server's estimate, else ours; null when unknown. */
  etaSeconds: number | null
}

/** Follows one job's items: each changed item, and "re-read them all" (`items_reset`). */
export interface ItemFeed {
  item: (item: Item) => void
  reset: () => void
}

type Incoming =
  | { kind: 'message'; message: ServerMessage }
  | { kind: 'polled'; jobs: Job[]; complete: boolean }

export interface LiveStartOptions {
  /** The bearer token, when the app holds one (else the cookie authenticates). */
  token?: () => string | null
  /** Our credentials were refused: the session should sign out. */
  onUnauthorized?: () => void
  environment?: Partial<LiveConnectionEnvironment>
  connection?: Partial<LiveConnectionOptions>
  clock?: FrameClock
  storage?: KeyValueStorage | null
}

/** A resume that has not filled its gap after this long restarts the connection. */
export const GAP_TIMEOUT_MS = 3_000
const PERSIST_THROTTLE_MS = 500
const ORDERED = { ordered: true } as const
/** Rates are measured over at least this long, then smoothed. */
const RATE_WINDOW_MS = 1_000
const RATE_SMOOTHING = 0.3

function browserEnvironment(): LiveConnectionEnvironment {
  const hasWindow = typeof window !== 'undefined'
  return {
    WebSocket: typeof WebSocket === 'undefined' ? null : (WebSocket as unknown as WebSocketFactory),
    EventSource: typeof EventSource === 'undefined' ? null : (EventSource as unknown as EventSourceFactory),
    poll: {
      listJobs,
      getProgress,
      isUnauthorized: (error) => error instanceof ApiError && error.status === 401,
      isGone: (error) => error instanceof ApiError && error.status === 404,
    },
    checkAuth: () => checkAuth(),
    token: () => null,
    location: hasWindow ? window.location : { protocol: 'http:', host: '127.0.0.1:9527' },
    random: Math.random,
    now: () => Date.now(),
    isOnline: () => typeof navigator === 'undefined' || navigator.onLine !== false,
    isHidden: () => typeof document !== 'undefined' && document.hidden,
    window: hasWindow ? window : null,
    document: typeof document !== 'undefined' ? document : null,
  }
}

export const useLiveStore = defineStore('live', () => {
  // --- state ---------------------------------------------------------------
  /** Every job of the user by id. Replaced entries, never mutated in place. */
  const jobs = shallowRef<Record<string, Job>>({})
  const speeds = shallowRef<Record<string, JobSpeed>>({})
  const status = ref<ConnectionStatus>({ state: 'idle', transport: null, retryAt: null, failures: 0 })
  const lastSeq = ref(-1)
  /** A full state (hello, snapshot or job list) arrived since the page loaded. */
  const synced = ref(false)
  /** The jobs on screen came from sessionStorage and await the server's word. */
  const restored = ref(false)

  let storage: KeyValueStorage | null = sessionStore()
  let sequencer = new Sequencer(-1)
  /** The server stream our seq belongs to; sent with every resume. */
  let epoch: string | null = null
  let connection: LiveConnection | null = null
  let batcher: FrameBatcher<Incoming> | null = null
  let gapTimer: ReturnType<typeof setTimeout> | null = null
  let persistTimer: ReturnType<typeof setTimeout> | null = null
  const rateSamples = new Map<string, { at: number; bytes: number; finished: number }>()
  const itemListeners = new Map<string, Set<ItemFeed>>()
  let removePageHide: (() => void) | null = null

  restore()

  // --- getters -------------------------------------------------------------
  /** Newest first; ids break ties (numeric ids compare as numbers). */
  const jobList = computed(() =>
    Object.values(jobs.value).sort(
      (a, b) => b.created.localeCompare(a.created) || b.id.localeCompare(a.id, undefined, { numeric: true }),
    ),
  )
  const activeJobs = computed(() => jobList.value.filter(isActiveJob))
  const connectionDisplay = computed<ConnectionDisplay>(() => {
    const state = status.value.state
    if (state === 'live') return 'live'
    if (state === 'offline' || state === 'idle') return 'offline'
    return 'reconnecting'
  })
  const transport = computed<TransportKind | null>(() => status.value.transport)

  function job(id: string): Job | undefined {
    return jobs.value[id]
  }

  function speed(id: string): JobSpeed {
    return speeds.value[id] ?? { itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: null }
  }

  /** Percent finished over the given jobs together (0–100), for the title. */
  function percentOf(list: Job[]): number {
    let total = 0
    let finished = 0
    for (const entry of list) {
      total += entry.counts.total
      finished += finishedCount(entry.counts)
    }
    if (total === 0) return list.length > 0 && list.every((j) => j.state === 'done') ? 100 : 0
    return Math.min(100, Math.floor((finished * 100) / total))
  }

  // --- start / stop ----------------------------------------------------------
  function start(options: LiveStartOptions = {}): void {
    if (connection) return
    if (options.storage !== undefined) {
      storage = options.storage
      restore()
    }
    const environment: LiveConnectionEnvironment = {
      ...browserEnvironment(),
      ...(options.token ? { token: options.token } : {}),
      ...options.environment,
    }
    batcher = new FrameBatcher<Incoming>(applyBatch, options.clock ?? browserFrameClock())
    connection = new LiveConnection(
      environment,
      {
        status: (next) => (status.value = next),
        opened: onOpened,
        message: (message) => batcher?.push({ kind: 'message', message }),
        polled: (list, complete) => batcher?.push({ kind: 'polled', jobs: list, complete }),
        unauthorized: () => {
          batcher?.flush()
          stopConnection()
          options.onUnauthorized?.()
        },
        lastSeq: () => sequencer.last,
        activeJobIds: () => activeJobs.value.map((j) => j.id),
      },
      options.connection,
    )
    if (environment.window) {
      const onPageHide = () => {
        batcher?.flush()
        persistNow()
      }
      environment.window.addEventListener('pagehide', onPageHide)
      removePageHide = () => environment.window?.removeEventListener('pagehide', onPageHide)
    }
    connection.start()
  }

  function stopConnection(): void {
    connection?.stop()
    connection = null
    batcher?.clear()
    batcher = null
    if (gapTimer !== null) clearTimeout(gapTimer)
    gapTimer = null
    removePageHide?.()
    removePageHide = null
    persistNow()
  }

  /** Stops the connection (sign-out); the state stays unless `forget`. */
  function stop(forget = false): void {
    stopConnection()
    status.value = { state: 'idle', transport: null, retryAt: null, failures: 0 }
    if (forget) {
      jobs.value = {}
      speeds.value = {}
      rateSamples.clear()
      sequencer = new Sequencer(-1)
      epoch = null
      lastSeq.value = -1
      synced.value = false
      restored.value = false
      if (persistTimer !== null) clearTimeout(persistTimer)
      persistTimer = null
      clearLiveState(storage)
    }
  }

  /** The "Retry" button, and anything else that knows the network is back. */
  function retryNow(): void {
    connection?.reconnectNow()
  }

  /** Applies buffered messages now (tests; before reading numbers synchronously). */
  function flush(): void {
    batcher?.flush()
  }

  // --- item subscriptions ----------------------------------------------------
  /**
   * Passes `listener` each item event of `jobId` while subscribed (WebSocket
   * only; on SSE or polling the item store reads items over HTTP instead).
   */
  function subscribeItems(jobId: string, listener: ItemFeed): () => void {
    let listeners = itemListeners.get(jobId)
    if (!listeners) {
      listeners = new Set()
      itemListeners.set(jobId, listeners)
      connection?.send({ type: 'subscribe', job: jobId, items: true })
    }
    listeners.add(listener)
    return () => {
      const current = itemListeners.get(jobId)
      if (!current) return
      current.delete(listener)
      if (current.size === 0) {
        itemListeners.delete(jobId)
        connection?.send({ type: 'unsubscribe', job: jobId })
      }
    }
  }

  // --- local changes from HTTP answers -----------------------------------------
  /**
   * A job the app learned over HTTP (just created, an action's answer): it may
   * be older than the last event, so it cannot lower any count unless it is
   * the answer to "retry failed" (`requeue`).
   */
  function upsertJob(next: Job, options: { requeue?: boolean } = {}): void {
    const merged = mergeJob(jobs.value[next.id], next, { ordered: false, requeue: options.requeue })
    setJobs({ ...jobs.value, [next.id]: merged }, [next.id])
    schedulePersist()
  }

  function removeJob(id: string): void {
    if (!(id in jobs.value)) return
    const copy = { ...jobs.value }
    delete copy[id]
    jobs.value = copy
    rateSamples.delete(id)
    schedulePersist()
  }

  // --- the pipeline ----------------------------------------------------------
  function onOpened(kind: TransportKind): ClientMessage[] {
    // Held messages belonged to the old connection; the resume replays them.
    sequencer.resetConnection()
    if (gapTimer !== null) clearTimeout(gapTimer)
    gapTimer = null
    const frames: ClientMessage[] = []
    if (kind !== 'ws') return frames
    if (sequencer.last >= 0) frames.push(resumeFrame(sequencer.last))
    for (const jobId of itemListeners.keys()) frames.push({ type: 'subscribe', job: jobId, items: true })
    return frames
  }

  function resumeFrame(since: number): ClientMessage {
    return epoch ? { type: 'resume', since, epoch } : { type: 'resume', since }
  }

  function applyBatch(batch: Incoming[]): void {
    let next: Record<string, Job> | null = null
    const touched: string[] = []
    const edit = () => (next ??= { ...jobs.value })
    let replaced = false

    for (const entry of batch) {
      if (entry.kind === 'polled') {
        const target = edit()
        if (entry.complete) {
          const fresh: Record<string, Job> = {}
          for (const polledJob of entry.jobs) fresh[polledJob.id] = mergeJob(target[polledJob.id], polledJob, ORDERED)
          next = fresh
          replaced = true
          synced.value = true
        } else {
          for (const polledJob of entry.jobs) target[polledJob.id] = mergeJob(target[polledJob.id], polledJob, ORDERED)
        }
        touched.push(...entry.jobs.map((j) => j.id))
        continue
      }
      const message = entry.message
      if (message.type === 'items_reset') {
        for (const listener of itemListeners.get(message.job) ?? []) listener.reset()
        continue
      }
      if (message.type !== 'hello' && message.type !== 'snapshot' && message.type !== 'progress' && message.type !== 'job' && message.type !== 'item') continue
      const { ready, resumeSince } = sequencer.push(message)
      for (const accepted of ready) {
        switch (accepted.type) {
          case 'hello':
          case 'snapshot': {
            if (accepted.epoch) epoch = accepted.epoch
            const previous = edit()
            const fresh: Record<string, Job> = {}
            for (const snapshotJob of accepted.jobs) fresh[snapshotJob.id] = mergeJob(previous[snapshotJob.id], snapshotJob, ORDERED)
            next = fresh
            replaced = true
            synced.value = true
            touched.push(...accepted.jobs.map((j) => j.id))
            break
          }
          case 'progress': {
            const target = edit()
            target[accepted.job.id] = mergeJob(target[accepted.job.id], accepted.job, ORDERED)
            touched.push(accepted.job.id)
            break
          }
          case 'job': {
            const target = edit()
            if (accepted.event === 'deleted') delete target[accepted.job.id]
            else target[accepted.job.id] = mergeJob(target[accepted.job.id], accepted.job, ORDERED)
            touched.push(accepted.job.id)
            break
          }
          case 'item':
            for (const listener of itemListeners.get(accepted.job) ?? []) listener.item(accepted.item)
            break
        }
      }
      if (resumeSince !== null) requestResume(resumeSince)
    }

    lastSeq.value = sequencer.last
    if (next) {
      if (replaced) restored.value = false
      setJobs(next, touched)
      schedulePersist()
    }
  }

  function requestResume(since: number): void {
    if (!connection) return
    // One-way transports cannot ask: a fresh connection resumes from `since`.
    if (!connection.send(resumeFrame(since))) {
      connection.restart()
      return
    }
    if (gapTimer !== null) clearTimeout(gapTimer)
    gapTimer = setTimeout(() => {
      gapTimer = null
      if (sequencer.hasGap) connection?.restart()
    }, GAP_TIMEOUT_MS)
  }

  function setJobs(next: Record<string, Job>, touched: string[]): void {
    const now = Date.now()
    let speedCopy: Record<string, JobSpeed> | null = null
    for (const id of new Set(touched)) {
      const updated = next[id]
      if (!updated) {
        rateSamples.delete(id)
        continue
      }
      const measured = measureSpeed(updated, now)
      if (measured) (speedCopy ??= { ...speeds.value })[id] = measured
    }
    for (const id of Object.keys(speeds.value)) {
      if (next[id]) continue
      speedCopy ??= { ...speeds.value }
      delete speedCopy[id]
    }
    jobs.value = next
    if (speedCopy) speeds.value = speedCopy
    else triggerRef(speeds)
  }

  function measureSpeed(current: Job, now: number): JobSpeed | null {
    const finished = finishedCount(current.counts)
    const left = Math.max(0, current.counts.total - finished)
    const previous = speeds.value[current.id]
    if (current.state !== 'running') {
      rateSamples.delete(current.id)
      return { itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: left === 0 ? 0 : null }
    }
    const sample = rateSamples.get(current.id)
    if (!sample) {
      rateSamples.set(current.id, { at: now, bytes: current.bytes, finished })
      return previous ?? { itemsPerSecond: current.rate, bytesPerSecond: 0, etaSeconds: current.eta }
    }
    const elapsed = now - sample.at
    if (elapsed < RATE_WINDOW_MS) return null
    const itemsNow = Math.max(0, (finished - sample.finished) / (elapsed / 1000))
    const bytesNow = Math.max(0, (current.bytes - sample.bytes) / (elapsed / 1000))
    rateSamples.set(current.id, { at: now, bytes: current.bytes, finished })
    const smooth = (old: number | undefined, fresh: number) =>
      old === undefined ? fresh : old + RATE_SMOOTHING * (fresh - old)
    const itemsPerSecond = current.rate > 0 ? current.rate : smooth(previous?.itemsPerSecond, itemsNow)
    const bytesPerSecond = smooth(previous?.bytesPerSecond, bytesNow)
    const etaSeconds = current.eta ?? (itemsPerSecond > 0 ? left / itemsPerSecond : null)
    return { itemsPerSecond, bytesPerSecond, etaSeconds }
  }

  // --- persistence -------------------------------------------------------------
  function restore(): void {
    const saved = loadLiveState(storage)
    if (!saved) return
    const restoredJobs: Record<string, Job> = {}
    for (const savedJob of saved.jobs) restoredJobs[savedJob.id] = savedJob
    jobs.value = restoredJobs
    sequencer = new Sequencer(saved.lastSeq)
    epoch = saved.epoch
    lastSeq.value = saved.lastSeq
    restored.value = saved.jobs.length > 0
  }

  function schedulePersist(): void {
    if (persistTimer !== null) return
    persistTimer = setTimeout(() => {
      persistTimer = null
      persistNow()
    }, PERSIST_THROTTLE_MS)
  }

  function persistNow(): void {
    if (persistTimer !== null) clearTimeout(persistTimer)
    persistTimer = null
    saveLiveState(storage, sequencer.last, Object.values(jobs.value), epoch)
  }

  return {
    // state
    jobs,
    speeds,
    status,
    lastSeq,
    synced,
    restored,
    // getters
    jobList,
    activeJobs,
    connectionDisplay,
    transport,
    job,
    speed,
    percentOf,
    percentFinished,
    // actions
    start,
    stop,
    retryNow,
    flush,
    subscribeItems,
    upsertJob,
    removeJob,
    persistNow,
  }
})
