/*
 * useLiveStore: the live state of every job and the ONE progress connection
 * of the app, as a Pinia store. Started once from main.ts when the user is
 * signed in; views and components only read it, so moving between pages
 * never opens a socket or refetches: the numbers are already here.
 *
 * The state and its rules (seq order, resume, reconnect with jittered
 * backoff, WebSocket → SSE → polling, one batch per animation frame, counts
 * that never go backwards, the sessionStorage copy) are litchi-client's
 * LiveJobs (clients/js/src/live/); this store only mirrors its fields into
 * refs when it says they changed, so devtools, views and tests see them.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef, triggerRef } from 'vue'
import {
  connectionDisplayOf,
  isActiveJob,
  LiveJobs,
  newestFirst,
  noSpeed,
  percentFinished,
  percentOf,
  type ConnectionDisplay,
  type ConnectionStatus,
  type ItemFeed,
  type Job,
  type JobMap,
  type JobSpeed,
  type LiveStartOptions,
  type TransportKind,
} from 'litchi-client'
import { api } from '@/api/http'

export type { ConnectionDisplay, ConnectionStatus, ItemFeed, JobSpeed, LiveStartOptions } from 'litchi-client'
export { GAP_TIMEOUT_MS } from 'litchi-client'

export const useLiveStore = defineStore('live', () => {
  const core = new LiveJobs({ api })

  // --- state (mirrors of core's fields) ----------------------------------------
  /** Every job of the user by id. Replaced entries, never mutated in place. */
  const jobs = shallowRef<JobMap>(core.jobs)
  const speeds = shallowRef<Record<string, JobSpeed>>(core.speeds)
  const status = ref<ConnectionStatus>(core.status)
  const lastSeq = ref(core.lastSeq)
  /** A full state (hello, snapshot or job list) arrived since the page loaded. */
  const synced = ref(core.synced)
  /** The jobs on screen came from sessionStorage and await the server's word. */
  const restored = ref(core.restored)

  core.onChange((change) => {
    if (change.jobs) jobs.value = core.jobs
    if (change.speeds) speeds.value = core.speeds
    // Unchanged speeds still re-render: time left is shown against the new counts.
    else if (change.jobs) triggerRef(speeds)
    if (change.status) status.value = core.status
    lastSeq.value = core.lastSeq
    synced.value = core.synced
    restored.value = core.restored
  })

  // --- getters -------------------------------------------------------------
  /** Newest first; ids break ties (numeric ids compare as numbers). */
  const jobList = computed(() => Object.values(jobs.value).sort(newestFirst))
  const activeJobs = computed(() => jobList.value.filter(isActiveJob))
  const connectionDisplay = computed<ConnectionDisplay>(() => connectionDisplayOf(status.value))
  const transport = computed<TransportKind | null>(() => status.value.transport)

  function job(id: string): Job | undefined {
    return jobs.value[id]
  }

  function speed(id: string): JobSpeed {
    return speeds.value[id] ?? noSpeed()
  }

  // --- actions ---------------------------------------------------------------
  /** Opens the connection (once); `token` and `onUnauthorized` come from the session. */
  function start(options: LiveStartOptions = {}): void {
    core.start(options)
  }

  /** Stops the connection (sign-out); the state stays unless `forget`. */
  function stop(forget = false): void {
    core.stop(forget)
  }

  /** The "Retry" button, and anything else that knows the network is back. */
  function retryNow(): void {
    core.retryNow()
  }

  /** Applies buffered messages now (tests; before reading numbers synchronously). */
  function flush(): void {
    core.flush()
  }

  /** Passes `listener` each item event of `jobId` while subscribed (WebSocket only). */
  function subscribeItems(jobId: string, listener: ItemFeed): () => void {
    return core.subscribeItems(jobId, listener)
  }

  /** A job learned over HTTP; it cannot lower counts unless it answers "retry failed". */
  function upsertJob(next: Job, options: { requeue?: boolean } = {}): void {
    core.upsertJob(next, options)
  }

  function removeJob(id: string): void {
    core.removeJob(id)
  }

  /** Saves the small copy now (page hide, tests); otherwise saves are throttled. */
  function persistNow(): void {
    core.persistNow()
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
