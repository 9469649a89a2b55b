/*
 * LiveJobs: the live state of every job of one user and the ONE progress
 * connection that keeps it current. Framework-free: a Pinia store or a Vue
 * composable wraps it (they copy its fields into refs on `onChange`), a plain
 * page subscribes to it.
 *
 * Pipeline: transport → FrameBatcher (one batch per animation frame, a timer
 * when hidden) → LiveReducer (Sequencer: seq order, duplicates dropped, gap →
 * resume; mergeJob: no count goes backwards) → `jobs`, and speeds from the
 * SpeedEstimator. A small copy (last seq, per-job counts) is saved to
 * sessionStorage, throttled, so a reload paints at once and the new socket's
 * first frame is `resume since lastSeq`. The rules live in the modules beside
 * this one, tested on plain objects; this file wires them together and tells
 * listeners what changed.
 *
 * State is replaced, never mutated in place: `jobs` and `speeds` are new
 * objects after every change, so a listener can compare references.
 */
import type { LitchiApi } from '../api.js'
import { isActiveJob, type ClientMessage, type Item, type Job } from '../protocol.js'
import { browserEnvironment } from './browser-environment.js'
import {
  LiveConnection,
  type ConnectionStatus,
  type LiveConnectionEnvironment,
  type LiveConnectionOptions,
} from './connection.js'
import { browserFrameClock, FrameBatcher, type FrameClock } from './frame-batcher.js'
import { ItemFeeds, type ItemFeed } from './item-feeds.js'
import { newestFirst } from './job-list.js'
import { clearLiveState, loadLiveState, saveLiveState, sessionStore, ThrottledSave, type KeyValueStorage } from './persist.js'
import { LiveReducer, replaceJobs, withJob, withoutJob, type Incoming, type JobMap } from './reducer.js'
import { noSpeed, SpeedEstimator, type JobSpeed } from './speed.js'
import type { TransportKind } from './transports.js'

/** What the connection badge shows: live, trying again, or given up for now. */
export type ConnectionDisplay = 'live' | 'reconnecting' | 'offline'

export interface LiveStartOptions {
  /** The bearer token, when the app holds one (else the cookie authenticates). */
  token?: () => string | null
  /** Our credentials were refused: the connection has stopped; sign in again. */
  onUnauthorized?: () => void
  environment?: Partial<LiveConnectionEnvironment>
  connection?: Partial<LiveConnectionOptions>
  clock?: FrameClock
  storage?: KeyValueStorage | null
}

export interface LiveJobsOptions {
  /** The HTTP client: polling, the auth check, and reading a job nobody told us about. */
  api?: LitchiApi
  /** Where the small copy for a fast reload goes; default sessionStorage, null for none. */
  storage?: KeyValueStorage | null
}

/** Which fields changed; a listener copies just those. */
export interface LiveChange {
  jobs: boolean
  speeds: boolean
  status: boolean
  /** lastSeq, synced or restored. */
  position: boolean
}

/** One job as it changes; null when there is no such job (never was, or deleted). */
export type JobListener = (job: Job | null, speed: JobSpeed) => void

/** A resume that has not filled its gap after this long restarts the connection. */
export const GAP_TIMEOUT_MS = 3_000

const IDLE: ConnectionStatus = { state: 'idle', transport: null, retryAt: null, failures: 0 }

interface JobWatch {
  listener: JobListener
  /** What it was last told: undefined = nothing yet. */
  sent: Job | null | undefined
  /** The job was missing from a full state: it was read once over HTTP. */
  lookedUp: boolean
}

export function connectionDisplayOf(status: ConnectionStatus): ConnectionDisplay {
  if (status.state === 'live') return 'live'
  if (status.state === 'offline' || status.state === 'idle') return 'offline'
  return 'reconnecting'
}

export class LiveJobs {
  private jobMap: JobMap = {}
  private speedMap: Record<string, JobSpeed> = {}
  private connectionStatus: ConnectionStatus = IDLE
  private seqShown = -1
  private fullStateSeen = false
  private fromStorage = false

  private readonly api: LitchiApi | null
  private storage: KeyValueStorage | null
  /** The seq position and epoch; replaced on restore and sign-out. */
  private reducer = new LiveReducer()
  private connection: LiveConnection | null = null
  private batcher: FrameBatcher<Incoming> | null = null
  private gapTimer: ReturnType<typeof setTimeout> | null = null
  private readonly saver = new ThrottledSave(() =>
    saveLiveState(this.storage, this.reducer.lastSeq, Object.values(this.jobMap), this.reducer.epoch),
  )
  private readonly estimator = new SpeedEstimator()
  private readonly itemFeeds = new ItemFeeds()
  private removePageHide: (() => void) | null = null
  private readonly changeListeners = new Set<(change: LiveChange) => void>()
  private readonly jobWatches = new Map<string, Set<JobWatch>>()

  constructor(options: LiveJobsOptions = {}) {
    this.api = options.api ?? null
    this.storage = options.storage !== undefined ? options.storage : sessionStore()
    this.restore()
  }

  // --- state -----------------------------------------------------------------

  /** Every job of the user by id. */
  get jobs(): JobMap {
    return this.jobMap
  }
  /** Items and bytes per second and time left, by job id. */
  get speeds(): Record<string, JobSpeed> {
    return this.speedMap
  }
  get status(): ConnectionStatus {
    return this.connectionStatus
  }
  /** The last seq applied (-1: none yet). */
  get lastSeq(): number {
    return this.seqShown
  }
  /** A full state (hello, snapshot or job list) arrived since this object was made. */
  get synced(): boolean {
    return this.fullStateSeen
  }
  /** The jobs held came from sessionStorage and await the server's word. */
  get restored(): boolean {
    return this.fromStorage
  }
  /** Newest first; ids break ties (numeric ids compare as numbers). */
  get jobList(): Job[] {
    return Object.values(this.jobMap).sort(newestFirst)
  }
  get activeJobs(): Job[] {
    return this.jobList.filter(isActiveJob)
  }
  get connectionDisplay(): ConnectionDisplay {
    return connectionDisplayOf(this.connectionStatus)
  }
  get transport(): TransportKind | null {
    return this.connectionStatus.transport
  }
  get started(): boolean {
    return this.connection !== null
  }

  job(id: string): Job | undefined {
    return this.jobMap[id]
  }

  speed(id: string): JobSpeed {
    return this.speedMap[id] ?? noSpeed()
  }

  // --- listening -------------------------------------------------------------

  /** Called after every change, with what changed (adapters copy those fields). */
  onChange(listener: (change: LiveChange) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  /**
   * Follows one job: `listener(job, speed)` now when the job is known, then
   * on every change of it, and `listener(null)` when there is no such job
   * (deleted, or absent from the server's full state and from GET
   * /api/jobs/{id}). Starts nothing: call start() for the numbers to move.
   */
  subscribe(jobId: string, listener: JobListener): () => void {
    const watch: JobWatch = { listener, sent: undefined, lookedUp: false }
    let watches = this.jobWatches.get(jobId)
    if (!watches) this.jobWatches.set(jobId, (watches = new Set()))
    watches.add(watch)
    this.deliver(jobId, watch)
    return () => {
      const current = this.jobWatches.get(jobId)
      current?.delete(watch)
      if (current?.size === 0) this.jobWatches.delete(jobId)
    }
  }

  /** Follows the whole list (newest first): now, then on every change. */
  subscribeJobs(listener: (jobs: Job[]) => void): () => void {
    listener(this.jobList)
    return this.onChange((change) => {
      if (change.jobs) listener(this.jobList)
    })
  }

  /** Follows the connection: now, then on every change of state or transport. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    listener(this.connectionStatus)
    return this.onChange((change) => {
      if (change.status) listener(this.connectionStatus)
    })
  }

  /**
   * Passes `feed` each item event of `jobId` while subscribed (WebSocket only;
   * on SSE or polling read the items over HTTP instead, see `transport`).
   * Several feeds of one job share one subscription on the socket.
   */
  subscribeItems(jobId: string, feed: ItemFeed): () => void {
    if (this.itemFeeds.add(jobId, feed)) this.connection?.send({ type: 'subscribe', job: jobId, items: true })
    return () => {
      if (this.itemFeeds.remove(jobId, feed)) this.connection?.send({ type: 'unsubscribe', job: jobId })
    }
  }

  // --- start / stop ----------------------------------------------------------

  /** Opens the connection (once; later calls do nothing while it runs). */
  start(options: LiveStartOptions = {}): void {
    if (this.connection) return
    if (options.storage !== undefined) {
      this.storage = options.storage
      this.restore()
    }
    const base: LiveConnectionEnvironment | null = this.api ? browserEnvironment(this.api) : null
    const environment = {
      ...base,
      ...(options.token ? { token: options.token } : {}),
      ...options.environment,
    } as LiveConnectionEnvironment
    if (!environment.poll || !environment.checkAuth) {
      throw new Error('LiveJobs.start: pass an api (new LiveJobs({ api })) or a whole environment')
    }
    this.batcher = new FrameBatcher<Incoming>((batch) => this.applyBatch(batch), options.clock ?? browserFrameClock())
    this.connection = new LiveConnection(
      environment,
      {
        status: (next) => {
          this.connectionStatus = next
          this.notify({ status: true })
        },
        opened: (kind) => this.onOpened(kind),
        message: (message) => this.batcher?.push({ kind: 'message', message }),
        polled: (list, complete) => this.batcher?.push({ kind: 'polled', jobs: list, complete }),
        unauthorized: () => {
          this.batcher?.flush()
          this.stopConnection()
          options.onUnauthorized?.()
        },
        lastSeq: () => this.reducer.lastSeq,
        activeJobIds: () => this.activeJobs.map((j) => j.id),
      },
      options.connection,
    )
    const pageWindow = environment.window
    if (pageWindow) {
      const onPageHide = () => {
        this.batcher?.flush()
        this.persistNow()
      }
      pageWindow.addEventListener('pagehide', onPageHide)
      this.removePageHide = () => pageWindow.removeEventListener('pagehide', onPageHide)
    }
    this.connection.start()
  }

  /** Stops the connection (sign-out); the state stays unless `forget`. */
  stop(forget = false): void {
    this.stopConnection()
    this.connectionStatus = IDLE
    const change: Partial<LiveChange> = { status: true }
    if (forget) {
      this.jobMap = {}
      this.speedMap = {}
      this.estimator.clear()
      this.reducer = new LiveReducer()
      this.seqShown = -1
      this.fullStateSeen = false
      this.fromStorage = false
      this.saver.cancel()
      clearLiveState(this.storage)
      Object.assign(change, { jobs: true, speeds: true, position: true })
    }
    this.notify(change)
  }

  /** Connect now if not live (a Retry button, or anything that knows the network is back). */
  retryNow(): void {
    this.connection?.reconnectNow()
  }

  /** Applies buffered messages now (tests; before reading numbers synchronously). */
  flush(): void {
    this.batcher?.flush()
  }

  // --- local changes from HTTP answers -----------------------------------------

  /** A job learned over HTTP; see withJob in reducer.ts for why it cannot lower counts. */
  upsertJob(next: Job, options: { requeue?: boolean } = {}): void {
    this.setJobs(withJob(this.jobMap, next, options), [next.id])
    this.saver.schedule()
  }

  removeJob(id: string): void {
    const next = withoutJob(this.jobMap, id)
    if (!next) return
    this.jobMap = next
    this.estimator.forget(id)
    const speeds = { ...this.speedMap }
    delete speeds[id]
    this.speedMap = speeds
    this.saver.schedule()
    this.notify({ jobs: true, speeds: true })
  }

  /** Saves the small copy now (page hide, tests); otherwise saves are throttled. */
  persistNow(): void {
    this.saver.saveNow()
  }

  // --- the pipeline ----------------------------------------------------------

  private stopConnection(): void {
    this.connection?.stop()
    this.connection = null
    this.batcher?.clear()
    this.batcher = null
    if (this.gapTimer !== null) clearTimeout(this.gapTimer)
    this.gapTimer = null
    this.removePageHide?.()
    this.removePageHide = null
    this.persistNow()
  }

  private onOpened(kind: TransportKind): ClientMessage[] {
    // Held messages belonged to the old connection; the resume replays them.
    this.reducer.resetConnection()
    if (this.gapTimer !== null) clearTimeout(this.gapTimer)
    this.gapTimer = null
    const frames: ClientMessage[] = []
    if (kind !== 'ws') return frames
    if (this.reducer.lastSeq >= 0) frames.push(this.reducer.resumeFrame(this.reducer.lastSeq))
    for (const jobId of this.itemFeeds.jobIds()) frames.push({ type: 'subscribe', job: jobId, items: true })
    return frames
  }

  private applyBatch(batch: Incoming[]): void {
    const result = this.reducer.apply(this.jobMap, batch, {
      item: (jobId: string, item: Item) => this.itemFeeds.item(jobId, item),
      itemsReset: (jobId: string) => this.itemFeeds.reset(jobId),
      resume: (since: number) => this.requestResume(since),
    })
    const positionChanged = this.seqShown !== this.reducer.lastSeq || (result.replaced && !this.fullStateSeen)
    if (result.replaced) this.fullStateSeen = true
    this.seqShown = this.reducer.lastSeq
    if (result.jobs) {
      if (result.replaced) this.fromStorage = false
      this.setJobs(result.jobs, result.touched, positionChanged || result.replaced)
      this.saver.schedule()
    } else if (positionChanged) this.notify({ position: true })
  }

  private requestResume(since: number): void {
    const connection = this.connection
    if (!connection) return
    // One-way transports cannot ask: a fresh connection resumes from `since`.
    if (!connection.send(this.reducer.resumeFrame(since))) {
      connection.restart()
      return
    }
    if (this.gapTimer !== null) clearTimeout(this.gapTimer)
    this.gapTimer = setTimeout(() => {
      this.gapTimer = null
      if (this.reducer.hasGap) this.connection?.restart()
    }, GAP_TIMEOUT_MS)
  }

  private setJobs(next: JobMap, touched: string[], positionChanged = false): void {
    const speedCopy = this.estimator.update(this.speedMap, next, touched)
    this.jobMap = next
    if (speedCopy) this.speedMap = speedCopy
    this.notify({ jobs: true, speeds: speedCopy !== null, position: positionChanged })
  }

  private notify(partial: Partial<LiveChange>): void {
    const change: LiveChange = {
      jobs: partial.jobs ?? false,
      speeds: partial.speeds ?? false,
      status: partial.status ?? false,
      position: partial.position ?? false,
    }
    for (const listener of [...this.changeListeners]) listener(change)
    if (change.jobs || change.position) {
      for (const [jobId, watches] of [...this.jobWatches]) for (const watch of [...watches]) this.deliver(jobId, watch)
    }
  }

  /** Tells one job watcher what changed since it was last told, if anything. */
  private deliver(jobId: string, watch: JobWatch): void {
    const job = this.jobMap[jobId]
    if (job) {
      if (job !== watch.sent) {
        watch.sent = job
        watch.listener(job, this.speed(jobId))
      }
      return
    }
    if (watch.sent) {
      // It was here and is gone: deleted.
      watch.sent = null
      watch.listener(null, noSpeed())
      return
    }
    if (watch.sent === null || !this.fullStateSeen || watch.lookedUp) return
    // The server's full state lacks it: a finished job a cut snapshot left
    // out, or one that does not exist. One read tells which.
    watch.lookedUp = true
    const missing = () => {
      if (this.jobMap[jobId] || watch.sent !== undefined) return
      watch.sent = null
      watch.listener(null, noSpeed())
    }
    if (!this.api) return missing()
    this.api.getJob(jobId).then(
      (found) => this.upsertJob(found),
      (error: unknown) => {
        if ((error as { status?: unknown })?.status === 404) missing()
      },
    )
  }

  // --- persistence -------------------------------------------------------------

  private restore(): void {
    const saved = loadLiveState(this.storage)
    if (!saved) return
    this.jobMap = replaceJobs({}, saved.jobs)
    this.reducer = new LiveReducer(saved.lastSeq, saved.epoch)
    this.seqShown = saved.lastSeq
    this.fromStorage = saved.jobs.length > 0
    this.notify({ jobs: true, position: true })
  }
}
