/*
 * One LiveJobs per test, made on first use (what `useLiveStore()` gave the
 * web app's tests before the live state moved here); `freshLive()` starts a
 * new one, like a page load.
 */
import { LiveJobs } from '../src/live/live-jobs.js'

let current: LiveJobs | null = null

export function freshLive(): void {
  current = null
}

export function useLive(): LiveJobs {
  return (current ??= new LiveJobs({ storage: null }))
}
