/*
 * litchi-client: the client of a Litchi server (docs/api.md, docs/protocol.md).
 *
 *   LitchiClient   REST calls + the live state of the user's jobs
 *   LitchiApi      the REST calls alone
 *   LiveJobs       the live state and its one connection, for adapters
 *   protocol       the message and object types, and their parsers
 *
 * Vue composables live in `litchi-client/vue`, test doubles in
 * `litchi-client/testing`; this entry depends on no framework.
 */
export { ApiError, LitchiApi, normaliseBaseUrl } from './api.js'
export type { ApiOptions, AuthVerdict, ItemPage, ItemQuery, JobAction, NewJob, RequestOptions, TokenSource } from './api.js'
export { LitchiClient, type ClientOptions } from './client.js'
export * from './protocol.js'
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './live/backoff.js'
export { browserEnvironment } from './live/browser-environment.js'
export {
  DEFAULT_CONNECTION_OPTIONS,
  LiveConnection,
  type ConnectionState,
  type ConnectionStatus,
  type LiveConnectionCallbacks,
  type LiveConnectionEnvironment,
  type LiveConnectionOptions,
} from './live/connection.js'
export { browserFrameClock, FrameBatcher, HIDDEN_FLUSH_MS, type FrameClock } from './live/frame-batcher.js'
export { ItemFeeds, type ItemFeed } from './live/item-feeds.js'
export { newestFirst, percentOf } from './live/job-list.js'
export { mergeCounts, mergeJob, type MergeOptions } from './live/job-merge.js'
export {
  connectionDisplayOf,
  GAP_TIMEOUT_MS,
  LiveJobs,
  type ConnectionDisplay,
  type JobListener,
  type LiveChange,
  type LiveJobsOptions,
  type LiveStartOptions,
} from './live/live-jobs.js'
export {
  clearLiveState,
  decodeLiveState,
  encodeLiveState,
  loadLiveState,
  MAX_PERSISTED_JOBS,
  PERSIST_KEY,
  PERSIST_THROTTLE_MS,
  saveLiveState,
  sessionStore,
  ThrottledSave,
  type KeyValueStorage,
  type RestoredState,
} from './live/persist.js'
export { LiveReducer, replaceJobs, withJob, withoutJob, type BatchResult, type Incoming, type JobMap, type ReduceEffects } from './live/reducer.js'
export { Sequencer, type SequencerResult } from './live/sequencer.js'
export { noSpeed, RATE_SMOOTHING, RATE_WINDOW_MS, SpeedEstimator, type JobSpeed } from './live/speed.js'
export {
  openEventSource,
  openWebSocket,
  startPolling,
  webSocketProtocols,
  webSocketUrl,
  WS_PROTOCOL,
  type CloseInfo,
  type EventSourceFactory,
  type EventSourceLike,
  type PollApi,
  type PollOptions,
  type Transport,
  type TransportHandlers,
  type TransportKind,
  type WebSocketFactory,
  type WebSocketLike,
} from './live/transports.js'
