/*
 * LiveConnection keeps exactly one progress transport open for the whole app
 * and decides when and how to reconnect. It knows nothing about jobs: it hands
 * every message to LiveJobs and asks it what to send first on a new
 * connection (the `resume`, then subscriptions).
 *
 * Reconnects use exponential backoff with full jitter and a cap; `online`,
 * `visibilitychange` to visible and `pageshow` reconnect at once; `pagehide`
 * closes. Transport fallback: when WebSocket attempts fail before ever opening
 * while plain HTTP works (so the server is up and we are signed in), after
 * `fallbackAfterFailures` such failures we switch to SSE, and from SSE to
 * polling the same way, at once and without showing it. While on a fallback a
 * WebSocket is tried again now and then and adopted as soon as one opens.
 */
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js'
import {
  openEventSource,
  openWebSocket,
  startPolling,
  webSocketUrl,
  type CloseInfo,
  type EventSourceFactory,
  type PollApi,
  type Transport,
  type TransportHandlers,
  type TransportKind,
  type WebSocketFactory,
} from './transports.js'
import type { ClientMessage, Job, ServerMessage } from '../protocol.js'

export type ConnectionState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'offline'

export interface ConnectionStatus {
  state: ConnectionState
  transport: TransportKind | null
  /** When the next attempt happens (ms since epoch), while reconnecting/offline. */
  retryAt: number | null
  /** Consecutive failed attempts. */
  failures: number
}

export interface LiveConnectionOptions {
  backoff: BackoffPolicy
  /** Failures-before-open at one transport, with HTTP working, before the next one. */
  fallbackAfterFailures: number
  /** How often a WebSocket is tried again while on SSE or polling. */
  webSocketRetryMs: number
  /** After this many consecutive failures the state shows as offline. */
  offlineAfterFailures: number
  /** An attempt that has not opened after this long counts as failed (a blocked socket may hang). */
  connectTimeoutMs: number
  /** WebSocket: send a ping this often... */
  heartbeatMs: number
  /** ...and treat the socket as dead when nothing arrived for this long. */
  deadAfterMs: number
  pollIntervalMs: number
  pollFullListEvery: number
}

export const DEFAULT_CONNECTION_OPTIONS: LiveConnectionOptions = {
  backoff: DEFAULT_BACKOFF,
  fallbackAfterFailures: 2,
  webSocketRetryMs: 60_000,
  offlineAfterFailures: 8,
  connectTimeoutMs: 8_000,
  heartbeatMs: 20_000,
  deadAfterMs: 50_000,
  pollIntervalMs: 1_000,
  pollFullListEvery: 5,
}

/** Everything the connection touches in the outside world, injectable for tests. */
export interface LiveConnectionEnvironment {
  WebSocket: WebSocketFactory | null
  EventSource: EventSourceFactory | null
  poll: PollApi
  /** Is plain HTTP working and are we signed in? Asked after a failure to open. */
  checkAuth: () => Promise<'ok' | 'unauthorized' | 'unreachable'>
  token: () => string | null
  /** The server's URL ('' or absent: the page's own origin); see webSocketUrl. */
  baseUrl?: string
  location: { protocol: string; host: string }
  random: () => number
  now: () => number
  isOnline: () => boolean
  isHidden: () => boolean
  /** Where to listen for online/offline/pageshow/pagehide (window) and visibilitychange (document). */
  window: Pick<EventTarget, 'addEventListener' | 'removeEventListener'> | null
  document: Pick<EventTarget, 'addEventListener' | 'removeEventListener'> | null
}

export interface LiveConnectionCallbacks {
  status: (status: ConnectionStatus) => void
  /** A new transport opened: return the frames to send first (resume, subscribes). */
  opened: (kind: TransportKind) => ClientMessage[]
  message: (message: ServerMessage) => void
  polled: (jobs: Job[], complete: boolean) => void
  /** Our credentials were refused; the connection has stopped. */
  unauthorized: () => void
  /** The last seq applied, for an SSE resume point. */
  lastSeq: () => number
  /** Jobs worth polling individually. */
  activeJobIds: () => string[]
}

const TRANSPORT_ORDER: TransportKind[] = ['ws', 'sse', 'poll']

export class LiveConnection {
  private readonly options: LiveConnectionOptions
  private transport: Transport | null = null
  private transportOpen = false
  private probe: Transport | null = null
  private mode: TransportKind
  private failures = 0
  private failuresBeforeOpen = 0
  private running = false
  private suspended = false
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null
  private probeTimer: ReturnType<typeof setTimeout> | null = null
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null
  private connectTimer: ReturnType<typeof setTimeout> | null = null
  private lastMessageAt = 0
  private status: ConnectionStatus = { state: 'idle', transport: null, retryAt: null, failures: 0 }
  /** Bumped on every new attempt so late callbacks of an old one are ignored. */
  private generation = 0

  constructor(
    private readonly env: LiveConnectionEnvironment,
    private readonly callbacks: LiveConnectionCallbacks,
    options: Partial<LiveConnectionOptions> = {},
  ) {
    this.options = { ...DEFAULT_CONNECTION_OPTIONS, ...options }
    this.mode = this.firstAvailable('ws')
  }

  get currentStatus(): ConnectionStatus {
    return this.status
  }

  get transportKind(): TransportKind | null {
    return this.transport ? this.transport.kind : null
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.suspended = false
    this.listen(true)
    this.connect()
  }

  stop(): void {
    if (!this.running) return
    this.running = false
    this.listen(false)
    this.closeEverything()
    this.setStatus({ state: 'idle', transport: null, retryAt: null, failures: 0 })
  }

  /** Sends on the open transport; false when it cannot (closed, or one-way). */
  send(message: ClientMessage): boolean {
    return this.transportOpen && this.transport !== null && this.transport.send(message)
  }

  /** Reconnects now unless a live connection exists (Retry button, online, visible). */
  reconnectNow(): void {
    if (!this.running) return
    this.suspended = false
    if (this.transport && (this.transportOpen || this.reconnectTimer === null)) return
    this.clearReconnectTimer()
    this.connect()
  }

  /** Drops the current transport and connects again at once (e.g. a gap that did not fill). */
  restart(): void {
    if (!this.running) return
    this.closeEverything()
    this.connect()
  }

  // --- attempts -----------------------------------------------------------

  private firstAvailable(from: TransportKind): TransportKind {
    for (const kind of TRANSPORT_ORDER.slice(TRANSPORT_ORDER.indexOf(from))) {
      if (kind === 'ws' && this.env.WebSocket) return kind
      if (kind === 'sse' && this.env.EventSource) return kind
      if (kind === 'poll') return kind
    }
    return 'poll'
  }

  private connect(): void {
    this.clearReconnectTimer()
    this.closeTransport()
    const generation = ++this.generation
    this.setStatus({
      state:
        this.status.state === 'idle' || this.status.state === 'connecting'
          ? 'connecting'
          : this.status.state === 'offline'
            ? 'offline'
            : 'reconnecting',
      transport: this.mode,
      retryAt: null,
      failures: this.failures,
    })
    this.transport = this.openTransport(this.mode, {
      open: () => generation === this.generation && this.onOpen(),
      message: (message) => generation === this.generation && this.onMessage(message),
      polled: (jobs, complete) => generation === this.generation && this.callbacks.polled(jobs, complete),
      close: (info) => generation === this.generation && void this.onClose(info),
    })
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null
      if (generation !== this.generation || this.transportOpen) return
      // Hanging in "connecting" (a proxy or filter swallowing the upgrade): give up on it.
      this.transport?.close()
      void this.onClose({ opened: false })
    }, this.options.connectTimeoutMs)
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer)
    this.connectTimer = null
  }

  private openTransport(kind: TransportKind, handlers: TransportHandlers): Transport {
    if (kind === 'ws' && this.env.WebSocket) {
      return openWebSocket(this.env.WebSocket, webSocketUrl(this.env.location, this.env.baseUrl), this.env.token(), handlers)
    }
    if (kind === 'sse' && this.env.EventSource) {
      return openEventSource(this.env.EventSource, this.callbacks.lastSeq(), handlers, this.env.baseUrl)
    }
    return startPolling(
      this.env.poll,
      {
        intervalMs: this.options.pollIntervalMs,
        fullListEvery: this.options.pollFullListEvery,
        activeJobIds: this.callbacks.activeJobIds,
      },
      handlers,
    )
  }

  private onOpen(): void {
    this.clearConnectTimer()
    this.transportOpen = true
    this.failures = 0
    this.failuresBeforeOpen = 0
    this.lastMessageAt = this.env.now()
    const kind = this.transport!.kind
    for (const frame of this.callbacks.opened(kind)) this.transport!.send(frame)
    this.setStatus({ state: 'live', transport: kind, retryAt: null, failures: 0 })
    if (kind === 'ws') this.startHeartbeat()
    else this.scheduleWebSocketProbe()
  }

  private onMessage(message: ServerMessage): void {
    this.lastMessageAt = this.env.now()
    this.callbacks.message(message)
  }

  private async onClose(info: CloseInfo): Promise<void> {
    const kind = this.transport?.kind ?? this.mode
    const generation = this.generation
    this.clearConnectTimer()
    this.transport = null
    this.transportOpen = false
    this.stopHeartbeat()
    this.clearProbe()
    if (!this.running || this.suspended) return
    if (info.unauthorized) return this.refused()

    if (!info.opened && kind !== 'poll') {
      // Is it this transport, the server, or our credentials?
      this.setStatus({ ...this.status, state: this.status.state === 'connecting' ? 'connecting' : 'reconnecting' })
      const verdict = await this.env.checkAuth()
      if (generation !== this.generation || !this.running || this.suspended) return
      if (verdict === 'unauthorized') return this.refused()
      if (verdict === 'ok') {
        this.failuresBeforeOpen++
        if (this.failuresBeforeOpen >= this.options.fallbackAfterFailures) {
          const next = this.firstAvailable(TRANSPORT_ORDER[TRANSPORT_ORDER.indexOf(kind) + 1])
          this.mode = next
          this.failuresBeforeOpen = 0
          // HTTP works, so the next transport should too: try it at once, quietly.
          this.connect()
          return
        }
      }
    }
    if (info.opened && kind !== 'ws' && this.env.WebSocket && this.mode !== 'ws') {
      // A fallback that worked and dropped: the next attempt may as well try WS again.
      this.mode = this.firstAvailable('ws')
      this.failuresBeforeOpen = 0
    }
    this.scheduleReconnect()
  }

  private refused(): void {
    this.running = false
    this.listen(false)
    this.closeEverything()
    this.setStatus({ state: 'idle', transport: null, retryAt: null, failures: 0 })
    this.callbacks.unauthorized()
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.options.backoff, this.failures, this.env.random)
    this.failures++
    const offline = !this.env.isOnline() || this.failures >= this.options.offlineAfterFailures
    this.setStatus({
      state: offline ? 'offline' : 'reconnecting',
      transport: this.mode,
      retryAt: this.env.now() + delay,
      failures: this.failures,
    })
    this.clearReconnectTimer()
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect()
    }, delay)
  }

  // --- WebSocket upgrade while on a fallback ------------------------------

  private scheduleWebSocketProbe(): void {
    if (!this.env.WebSocket || this.probeTimer !== null) return
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null
      this.tryWebSocketProbe()
    }, this.options.webSocketRetryMs)
  }

  private tryWebSocketProbe(): void {
    if (!this.running || !this.transportOpen || this.transport?.kind === 'ws' || !this.env.WebSocket) return
    // The generation this probe runs under once adopted; null while it is only a probe.
    let adoptedAs: number | null = null
    const probe = openWebSocket(this.env.WebSocket, webSocketUrl(this.env.location, this.env.baseUrl), this.env.token(), {
      open: () => {
        this.probe = null
        if (!this.running || !this.transportOpen) return probe.close()
        // Swap: the fallback goes quietly; the socket takes over from our last seq.
        this.closeTransport()
        adoptedAs = ++this.generation
        this.mode = 'ws'
        this.failuresBeforeOpen = 0
        this.transport = probe
        this.onOpen()
      },
      message: (message) => adoptedAs === this.generation && this.onMessage(message),
      polled: () => {},
      close: (info) => {
        if (adoptedAs === null) {
          this.probe = null
          if (this.running && this.transportOpen) this.scheduleWebSocketProbe()
        } else if (adoptedAs === this.generation) void this.onClose(info)
      },
    })
    this.probe = probe
  }

  // --- heartbeat ----------------------------------------------------------

  private startHeartbeat(): void {
    this.stopHeartbeat()
    this.heartbeatTimer = setInterval(() => {
      if (!this.transportOpen || !this.transport) return
      if (this.env.now() - this.lastMessageAt > this.options.deadAfterMs) {
        // Half-open socket (laptop slept, NAT dropped it): start over.
        const transport = this.transport
        this.transport = null
        this.transportOpen = false
        transport.close()
        this.stopHeartbeat()
        this.scheduleReconnect()
        return
      }
      this.transport.send({ type: 'ping' })
    }, this.options.heartbeatMs)
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = null
  }

  // --- page lifecycle -----------------------------------------------------

  private readonly onOnline = () => this.reconnectNow()
  private readonly onOffline = () => {
    if (!this.transportOpen) this.setStatus({ ...this.status, state: 'offline' })
  }
  private readonly onVisibility = () => {
    if (!this.env.isHidden()) this.reconnectNow()
  }
  private readonly onPageShow = () => {
    this.suspended = false
    this.reconnectNow()
  }
  private readonly onPageHide = () => {
    // Leaving (or entering the back/forward cache): close cleanly; pageshow reopens.
    this.suspended = true
    this.closeEverything()
  }

  private listen(on: boolean): void {
    const method = on ? 'addEventListener' : 'removeEventListener'
    this.env.window?.[method]('online', this.onOnline)
    this.env.window?.[method]('offline', this.onOffline)
    this.env.window?.[method]('pageshow', this.onPageShow)
    this.env.window?.[method]('pagehide', this.onPageHide)
    this.env.document?.[method]('visibilitychange', this.onVisibility)
  }

  // --- housekeeping -------------------------------------------------------

  private closeTransport(): void {
    this.clearConnectTimer()
    this.stopHeartbeat()
    const transport = this.transport
    this.transport = null
    this.transportOpen = false
    transport?.close()
  }

  private clearProbe(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer)
    this.probeTimer = null
    this.probe?.close()
    this.probe = null
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
  }

  private closeEverything(): void {
    this.generation++
    this.clearReconnectTimer()
    this.clearProbe()
    this.closeTransport()
  }

  private setStatus(status: ConnectionStatus): void {
    this.status = status
    this.callbacks.status(status)
  }
}
