/*
 * The real world the live connection runs in: the browser's WebSocket and
 * EventSource, the HTTP API for polling and the auth check, where the server
 * is, online and visibility state. connection.ts takes all of this as a
 * LiveConnectionEnvironment and never reaches for a global itself, so its
 * tests hand it fakes; this is the one place that reaches for them.
 */
import { ApiError, type LitchiApi } from '../api.js'
import type { LiveConnectionEnvironment } from './connection.js'
import type { EventSourceFactory, WebSocketFactory } from './transports.js'

export function browserEnvironment(api: LitchiApi): LiveConnectionEnvironment {
  const hasWindow = typeof window !== 'undefined'
  return {
    WebSocket: typeof WebSocket === 'undefined' ? null : (WebSocket as unknown as WebSocketFactory),
    EventSource: typeof EventSource === 'undefined' ? null : (EventSource as unknown as EventSourceFactory),
    poll: {
      listJobs: (signal) => api.listJobs(signal),
      getProgress: (id, signal) => api.getProgress(id, signal),
      isUnauthorized: (error) => error instanceof ApiError && error.status === 401,
      isGone: (error) => error instanceof ApiError && error.status === 404,
    },
    checkAuth: () => api.checkAuth(),
    token: () => api.token(),
    baseUrl: api.baseUrl,
    location: hasWindow ? window.location : { protocol: 'http:', host: '127.0.0.1:9527' },
    random: Math.random,
    now: () => Date.now(),
    isOnline: () => typeof navigator === 'undefined' || navigator.onLine !== false,
    isHidden: () => typeof document !== 'undefined' && document.hidden,
    window: hasWindow ? window : null,
    document: typeof document !== 'undefined' ? document : null,
  }
}
