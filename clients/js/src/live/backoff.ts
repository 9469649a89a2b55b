/*
 * Reconnect timing: exponential backoff with full jitter ("Exponential Backoff
 * And Jitter", AWS architecture blog): delay = random(0, min(cap, base * 2^n)).
 * Full jitter spreads the reconnects of many tabs after a server restart
 * instead of having them all arrive in the same instant. Same rule as the
 * server's src/core/backoff.hpp.
 */

export interface BackoffPolicy {
  /** Upper bound of the first retry's delay. */
  baseMs: number
  /** No delay is ever longer than this. */
  capMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 }

/** The upper bound of the delay after `failures` consecutive failures (0-based exponent). */
export function backoffCeiling(policy: BackoffPolicy, failures: number): number {
  const exponent = Math.max(0, Math.min(failures, 52))
  return Math.min(policy.capMs, policy.baseMs * 2 ** exponent)
}

/**
 * Delay before the next attempt after `failures` consecutive failures.
 * `unitRandom` is uniform in [0, 1): injected so tests can pin it.
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, unitRandom: () => number = Math.random): number {
  const r = Math.min(Math.max(unitRandom(), 0), 1)
  return Math.floor(r * backoffCeiling(policy, failures))
}
