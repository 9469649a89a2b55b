/*
 * LitchiClient: what another app needs in one object: the REST calls (it is
 * a LitchiApi) and the live state of the user's jobs (`live`, a LiveJobs on
 * the same server and credentials). The first subscribe opens the progress
 * connection; close() ends it.
 */
import { LitchiApi, type ApiOptions, type NewJob } from './api.js'
import type { Job } from './protocol.js'
import type { ConnectionStatus, LiveConnectionEnvironment, LiveConnectionOptions } from './live/connection.js'
import type { ItemFeed } from './live/item-feeds.js'
import { LiveJobs, type JobListener } from './live/live-jobs.js'
import type { KeyValueStorage } from './live/persist.js'

export interface ClientOptions extends ApiOptions {
  /** Where the small copy for a fast reload goes; default sessionStorage, null for none. */
  storage?: KeyValueStorage | null
  /** Reconnect, fallback and polling timings (defaults in DEFAULT_CONNECTION_OPTIONS). */
  connection?: Partial<LiveConnectionOptions>
  /**
   * Parts of the outside world to use instead of the globals, e.g.
   * `{ WebSocket }` from the `ws` package on Node 20, which has none.
   */
  environment?: Partial<LiveConnectionEnvironment>
}

export class LitchiClient extends LitchiApi {
  readonly live: LiveJobs
  private readonly connectionOptions: Partial<LiveConnectionOptions> | undefined
  private readonly environment: Partial<LiveConnectionEnvironment> | undefined

  constructor(options: ClientOptions = {}) {
    super(options)
    this.live = new LiveJobs({ api: this, storage: options.storage })
    this.connectionOptions = options.connection
    this.environment = options.environment
  }

  /** Opens the progress connection (WebSocket, else SSE, else polling); once. */
  connect(): this {
    this.live.start({ connection: this.connectionOptions, environment: this.environment })
    return this
  }

  /** Closes the connection; `forget` also drops the jobs held and the saved copy. */
  close(forget = false): void {
    this.live.stop(forget)
  }

  /** Follows one job (see LiveJobs.subscribe); connects when not connected yet. */
  subscribe(jobId: string, listener: JobListener): () => void {
    const unsubscribe = this.live.subscribe(jobId, listener)
    this.connect()
    return unsubscribe
  }

  /** Follows the job list, newest first; connects when not connected yet. */
  subscribeJobs(listener: (jobs: Job[]) => void): () => void {
    const unsubscribe = this.live.subscribeJobs(listener)
    this.connect()
    return unsubscribe
  }

  /** Follows one job's items as they change (WebSocket only); connects when not connected yet. */
  subscribeItems(jobId: string, feed: ItemFeed): () => void {
    const unsubscribe = this.live.subscribeItems(jobId, feed)
    this.connect()
    return unsubscribe
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    return this.live.onStatus(listener)
  }

  /** POST /api/jobs, and the new job goes into the live state at once. */
  override async createJob(job: NewJob): Promise<Job> {
    const created = await super.createJob(job)
    this.live.upsertJob(created)
    return created
  }
}
