/*
 * litchi-client/vue: composables over a LitchiClient, for Vue 3 and for
 * Vue 2.7's composition API (they use only inject, shallowRef, computed,
 * watch, getCurrentInstance, getCurrentScope and onScopeDispose, which both
 * have). Each composable subscribes while its component (or effect scope)
 * lives and lets go when it is unmounted; the client keeps one connection
 * for all of them.
 *
 *   app.use(createLitchi(new LitchiClient()))        // Vue 3
 *   setLitchiClient(new LitchiClient())              // Vue 2.7, or outside components
 *   const { job, percent } = useJobProgress(() => props.id)
 *   const { jobs, status } = useJobs()
 */
import {
  computed,
  getCurrentInstance,
  getCurrentScope,
  inject,
  onScopeDispose,
  shallowRef,
  watch,
  type ComputedRef,
  type InjectionKey,
  type Ref,
  type ShallowRef,
} from 'vue'
import type { LitchiClient } from './client.js'
import type { ConnectionStatus } from './live/connection.js'
import { percentOf } from './live/job-list.js'
import { connectionDisplayOf, type ConnectionDisplay } from './live/live-jobs.js'
import { noSpeed, type JobSpeed } from './live/speed.js'
import { isActiveJob, percentFinished, type Job } from './protocol.js'

export const LITCHI_CLIENT: InjectionKey<LitchiClient> = Symbol('litchi-client')

let defaultClient: LitchiClient | null = null

/** The client composables use when none is provided (Vue 2.7, tests, code outside components). */
export function setLitchiClient(client: LitchiClient | null): void {
  defaultClient = client
}

/** A Vue 3 plugin: provides `client` to every component and makes it the default. */
export function createLitchi(client: LitchiClient): { install(app: { provide(key: InjectionKey<LitchiClient>, value: LitchiClient): unknown }): void } {
  return {
    install(app) {
      app.provide(LITCHI_CLIENT, client)
      setLitchiClient(client)
    },
  }
}

/** The provided client, else the default one; throws when there is neither. */
export function useLitchiClient(): LitchiClient {
  const provided = getCurrentInstance() ? inject(LITCHI_CLIENT, null) : null
  const client = provided ?? defaultClient
  if (!client) throw new Error('litchi-client/vue: no client; app.use(createLitchi(client)) or setLitchiClient(client) first')
  return client
}

/** A ref, a getter, or a plain value. */
export type Source<T> = T | Ref<T> | (() => T)

function read<T>(source: Source<T>): T {
  if (typeof source === 'function') return (source as () => T)()
  if (source !== null && typeof source === 'object' && 'value' in (source as object)) return (source as Ref<T>).value
  return source as T
}

function whenDisposed(stop: () => void): void {
  if (getCurrentScope()) onScopeDispose(stop)
}

export interface ConnectionRefs {
  /** State, transport, next retry and failures of the one connection. */
  status: ShallowRef<ConnectionStatus>
  /** 'live', 'reconnecting' or 'offline', for a badge. */
  connection: ComputedRef<ConnectionDisplay>
}

function useConnection(client: LitchiClient): ConnectionRefs {
  const status = shallowRef<ConnectionStatus>(client.live.status)
  whenDisposed(client.onStatus((next) => (status.value = next)))
  return { status, connection: computed(() => connectionDisplayOf(status.value)) }
}

export interface JobProgress extends ConnectionRefs {
  /** The job; undefined while not known yet, null when there is no such job. */
  job: ShallowRef<Job | null | undefined>
  /** Items and bytes per second, time left. */
  speed: ShallowRef<JobSpeed>
  /** Whole percent finished, 0–100 (100 only when all are). */
  percent: ComputedRef<number>
}

/** One job's live progress; `id` may be a ref or a getter (a route param), null for none. */
export function useJobProgress(id: Source<string | null | undefined>, client: LitchiClient = useLitchiClient()): JobProgress {
  const job = shallowRef<Job | null | undefined>(undefined)
  const speed = shallowRef<JobSpeed>(noSpeed())
  let unsubscribe: (() => void) | null = null
  const stopWatching = watch(
    () => read(id),
    (next) => {
      unsubscribe?.()
      unsubscribe = null
      job.value = undefined
      speed.value = noSpeed()
      if (!next) return
      unsubscribe = client.subscribe(String(next), (current, currentSpeed) => {
        job.value = current
        speed.value = currentSpeed
      })
    },
    { immediate: true },
  )
  whenDisposed(() => {
    stopWatching()
    unsubscribe?.()
  })
  const percent = computed(() => (job.value ? percentFinished(job.value) : 0))
  return { job, speed, percent, ...useConnection(client) }
}

export interface JobsProgress extends ConnectionRefs {
  /** Every job of the user, newest first. */
  jobs: ShallowRef<Job[]>
  /** Those queued, running or paused. */
  activeJobs: ComputedRef<Job[]>
  /** Whole percent finished over the active jobs together (items, not jobs, weigh). */
  percent: ComputedRef<number>
}

/** The user's job list, live. */
export function useJobs(client: LitchiClient = useLitchiClient()): JobsProgress {
  const jobs = shallowRef<Job[]>([])
  whenDisposed(client.subscribeJobs((list) => (jobs.value = list)))
  const activeJobs = computed(() => jobs.value.filter(isActiveJob))
  const percent = computed(() => percentOf(activeJobs.value))
  return { jobs, activeJobs, percent, ...useConnection(client) }
}
