/*
 * useLiveStore: the live state of every job and the ONE progress connection
 * of the app. Started once from main.ts when the user is signed in; views and
 * components only read it, so moving between pages never opens a socket or
 * refetches: the numbers are already here.
 *
 * Pipeline: transport → FrameBatcher (one batch per animation frame, a timer
 * when hidden) → LiveReducer (Sequencer: seq order, duplicates dropped, gap →
 * resume; mergeJob: no count goes backwards) → reactive `jobs`, and speeds
 * from the SpeedEstimator. A small copy (last seq, per-job counts) is saved to
 * sessionStorage, throttled, so a reload paints at once and the new socket's
 * first frame is `resume since lastSeq`. Those rules live in live/, free of
 * Vue and tested on plain objects; this file is the reactive glue around them.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef, triggerRef } from 'vue'
import { isActiveJob, percentFinished, type ClientMessage, type Job } from '@/api/protocol'
import { browserEnvironment } from './live/browser-environment'
import {
  LiveConnection,
  type ConnectionStatus,
  type LiveConnectionEnvironment,
  type LiveConnectionOptions,
} from './live/connection'
import { browserFrameClock, FrameBatcher, type FrameClock } from './live/frame-batcher'
import { ItemFeeds, type ItemFeed } from './live/item-feeds'
import { newestFirst, percentOf } from './live/job-list'
import { clearLiveState, loadLiveState, saveLiveState, sessionStore, ThrottledSave, type KeyValueStorage } from './live/persist'
import { LiveReducer, replaceJobs, withJob, withoutJob, type Incoming, type JobMap } from './live/reducer'
import { noSpeed, SpeedEstimator, type JobSpeed } from './live/speed'
import type { TransportKind } from './live/transports'

export type { ConnectionStatus } from './live/connection'
export type { ItemFeed } from './live/item-feeds'
export type { JobSpeed } from './live/speed'

/** What the connection badge shows; `data-connection` takes these values. */
export type ConnectionDisplay = 'live' | 'reconnecting' | 'offline'

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

export const useLiveStore = defineStore('live', () => {
  // --- state ---------------------------------------------------------------
  /** Every job of the user by id. Replaced entries, never mutated in place. */
  const jobs = shallowRef<JobMap>({})
  const speeds = shallowRef<Record<string, JobSpeed>>({})
  const status = ref<ConnectionStatus>({ state: 'idle', transport: null, retryAt: null, failures: 0 })
  const lastSeq = ref(-1)
  /** A full state (hello, snapshot or job list) arrived since the page loaded. */
  const synced = ref(false)
  /** The jobs on screen came from sessionStorage and await the server's word. */
  const restored = ref(false)

  let storage: KeyValueStorage | null = sessionStore()
  /** The seq position and epoch; replaced on restore and sign-out. */
  let reducer = new LiveReducer()
  let connection: LiveConnection | null = null
  let batcher: FrameBatcher<Incoming> | null = null
  let gapTimer: ReturnType<typeof setTimeout> | null = null
  const saver = new ThrottledSave(() => saveLiveState(storage, reducer.lastSeq, Object.values(jobs.value), reducer.epoch))
  const estimator = new SpeedEstimator()
  const itemFeeds = new ItemFeeds()
  let removePageHide: (() => void) | null = null

  restore()

  // --- getters -------------------------------------------------------------
  /** Newest first; ids break ties (numeric ids compare as numbers). */
  const jobList = computed(() => Object.values(jobs.value).sort(newestFirst))
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
    return speeds.value[id] ?? noSpeed()
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
        lastSeq: () => reducer.lastSeq,
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
      estimator.clear()
      reducer = new LiveReducer()
      lastSeq.value = -1
      synced.value = false
      restored.value = false
      saver.cancel()
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
    if (itemFeeds.add(jobId, listener)) connection?.send({ type: 'subscribe', job: jobId, items: true })
    return () => {
      if (itemFeeds.remove(jobId, listener)) connection?.send({ type: 'unsubscribe', job: jobId })
    }
  }

  // --- local changes from HTTP answers -----------------------------------------
  /** A job learned over HTTP; see withJob in live/reducer.ts for why it cannot lower counts. */
  function upsertJob(next: Job, options: { requeue?: boolean } = {}): void {
    setJobs(withJob(jobs.value, next, options), [next.id])
    saver.schedule()
  }

  function removeJob(id: string): void {
    const next = withoutJob(jobs.value, id)
    if (!next) return
    jobs.value = next
    estimator.forget(id)
    saver.schedule()
  }

  // --- the pipeline ----------------------------------------------------------
  function onOpened(kind: TransportKind): ClientMessage[] {
    // Held messages belonged to the old connection; the resume replays them.
    reducer.resetConnection()
    if (gapTimer !== null) clearTimeout(gapTimer)
    gapTimer = null
    const frames: ClientMessage[] = []
    if (kind !== 'ws') return frames
    if (reducer.lastSeq >= 0) frames.push(reducer.resumeFrame(reducer.lastSeq))
    for (const jobId of itemFeeds.jobIds()) frames.push({ type: 'subscribe', job: jobId, items: true })
    return frames
  }

  function applyBatch(batch: Incoming[]): void {
    const result = reducer.apply(jobs.value, batch, {
      item: (jobId, item) => itemFeeds.item(jobId, item),
      itemsReset: (jobId) => itemFeeds.reset(jobId),
      resume: requestResume,
    })
    if (result.replaced) synced.value = true
    lastSeq.value = reducer.lastSeq
    if (result.jobs) {
      if (result.replaced) restored.value = false
      setJobs(result.jobs, result.touched)
      saver.schedule()
    }
  }

  function requestResume(since: number): void {
    if (!connection) return
    // One-way transports cannot ask: a fresh connection resumes from `since`.
    if (!connection.send(reducer.resumeFrame(since))) {
      connection.restart()
      return
    }
    if (gapTimer !== null) clearTimeout(gapTimer)
    gapTimer = setTimeout(() => {
      gapTimer = null
      if (reducer.hasGap) connection?.restart()
    }, GAP_TIMEOUT_MS)
  }

  function setJobs(next: JobMap, touched: string[]): void {
    const speedCopy = estimator.update(speeds.value, next, touched)
    jobs.value = next
    if (speedCopy) speeds.value = speedCopy
    else triggerRef(speeds)
  }

  // --- persistence -------------------------------------------------------------
  function restore(): void {
    const saved = loadLiveState(storage)
    if (!saved) return
    jobs.value = replaceJobs({}, saved.jobs)
    reducer = new LiveReducer(saved.lastSeq, saved.epoch)
    lastSeq.value = saved.lastSeq
    restored.value = saved.jobs.length > 0
  }

  /** Saves the small copy now (page hide, tests); otherwise saves are throttled. */
  function persistNow(): void {
    saver.saveNow()
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
