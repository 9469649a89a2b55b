/*
 * Coalesces bursts of incoming messages: they are buffered and handed over in
 * one batch at most once per animation frame, so 500 messages in a frame cost
 * one re-render, not 500. Hidden tabs get no animation frames, so there a
 * plain timer flushes instead (the browser throttles it, which is fine: nobody
 * is looking, and the batch is applied whole when the tab comes back).
 */

export interface FrameClock {
  requestFrame: (callback: () => void) => number
  cancelFrame: (handle: number) => void
  isHidden: () => boolean
}

export const HIDDEN_FLUSH_MS = 100

export function browserFrameClock(): FrameClock {
  const hasRaf = typeof requestAnimationFrame === 'function'
  return {
    requestFrame: (callback) => (hasRaf ? requestAnimationFrame(() => callback()) : (setTimeout(callback, 16) as unknown as number)),
    cancelFrame: (handle) => (hasRaf ? cancelAnimationFrame(handle) : clearTimeout(handle)),
    isHidden: () => typeof document !== 'undefined' && document.hidden,
  }
}

export class FrameBatcher<T> {
  private buffer: T[] = []
  private frameHandle: number | null = null
  private timerHandle: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly flushBatch: (batch: T[]) => void,
    private readonly clock: FrameClock = browserFrameClock(),
  ) {}

  get pending(): number {
    return this.buffer.length
  }

  push(entry: T): void {
    this.buffer.push(entry)
    this.schedule()
  }

  /** Applies whatever is buffered now (page hide, tests, switching transports). */
  flush(): void {
    this.cancelScheduled()
    if (this.buffer.length === 0) return
    const batch = this.buffer
    this.buffer = []
    this.flushBatch(batch)
  }

  /** Drops the buffer without applying it. */
  clear(): void {
    this.cancelScheduled()
    this.buffer = []
  }

  private schedule(): void {
    if (this.clock.isHidden()) {
      // Even with a frame already requested: hidden tabs may never run it.
      if (this.timerHandle !== null) return
      this.timerHandle = setTimeout(() => {
        this.timerHandle = null
        this.flush()
      }, HIDDEN_FLUSH_MS)
      return
    }
    if (this.frameHandle !== null || this.timerHandle !== null) return
    this.frameHandle = this.clock.requestFrame(() => {
      this.frameHandle = null
      this.flush()
    })
  }

  private cancelScheduled(): void {
    if (this.frameHandle !== null) this.clock.cancelFrame(this.frameHandle)
    if (this.timerHandle !== null) clearTimeout(this.timerHandle)
    this.frameHandle = null
    this.timerHandle = null
  }
}
